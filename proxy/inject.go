package proxy

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentvault/agentvault/vocab"
)

// An injector adds or sets a credential on a request the proxy has already
// decided may carry it. Each kind is one small type so that each can be tested
// on its own; none of them reads anything but the request and the secret.
type injector interface {
	inject(req *http.Request, secret string)
}

type bearerInjector struct{}

func (bearerInjector) inject(req *http.Request, secret string) {
	req.Header.Set("Authorization", "Bearer "+secret)
}

type basicInjector struct{ username string }

func (b basicInjector) inject(req *http.Request, secret string) {
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(b.username+":"+secret)))
}

type headerInjector struct{ name, format string }

func (h headerInjector) inject(req *http.Request, secret string) {
	req.Header.Set(h.name, strings.ReplaceAll(h.format, vocab.SecretToken, secret))
}

type queryInjector struct{ name string }

func (q queryInjector) inject(req *http.Request, secret string) {
	v := req.URL.Query()
	v.Set(q.name, secret)
	req.URL.RawQuery = v.Encode()
}

// newInjector maps an Injection to its processor. "placeholder" has none:
// substitution runs for every credential on its hosts whatever the rules say.
func newInjector(in Injection) (injector, error) {
	switch in.Type {
	case "", vocab.InjectPlaceholder:
		return nil, nil
	case vocab.InjectBearer:
		return bearerInjector{}, nil
	case vocab.InjectBasic:
		u := in.Username
		if u == "" {
			u = vocab.DefaultBasicUsername
		}
		return basicInjector{username: u}, nil
	case vocab.InjectHeader:
		if in.Name == "" {
			return nil, fmt.Errorf("header injection needs a header name")
		}
		f := in.Format
		if f == "" {
			f = vocab.SecretToken
		}
		return headerInjector{name: http.CanonicalHeaderKey(in.Name), format: f}, nil
	case vocab.InjectAWSSigV4:
		// Re-signing can fail and must run after every other change to the
		// request, so the credential runs it itself (see credential.apply).
		return nil, nil
	case vocab.InjectQuery:
		if in.Name == "" {
			return nil, fmt.Errorf("query injection needs a parameter name")
		}
		return queryInjector{name: in.Name}, nil
	default:
		return nil, fmt.Errorf("injection type %q is not supported by the proxy", in.Type)
	}
}

// injectAll puts every credential bound to the target, and allowed for the
// request's method and path, on the request. It returns the names of those
// it put there and the value each one used (for a replay after rotation).
func (p *Proxy) injectAll(req *http.Request, t *target) ([]string, map[string]string, error) {
	var creds []*credential
	for _, c := range p.policy.credentialsFor(t.host, t.port) {
		if c.allows(req) {
			creds = append(creds, c)
		}
	}
	return injectCredentials(req, creds, t.host, t.port)
}

// injectCredentials applies creds, already known to be bound to host:port,
// to req. Placeholder substitution runs once, over what the agent sent, for
// all of them together: a secret whose value happens to hold another
// credential's placeholder is never substituted a second time. The inject:
// rules run next (a header the proxy sets wins over the agent's), and AWS
// re-signing last, since a signature covers everything else.
func injectCredentials(req *http.Request, creds []*credential, host string, port int) ([]string, map[string]string, error) {
	values := make([]string, len(creds))
	var subs []substitution
	for i, c := range creds {
		v := c.current()
		if v == "" {
			return nil, nil, fmt.Errorf("credential %q has no value", c.Name)
		}
		values[i] = v
		if c.hasAWS {
			// The secret is a JSON document of keys; only the signature
			// carries them, and parseAWSCredentials checks each key's characters.
			continue
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			// A header value with a line break would let the secret split the request.
			return nil, nil, fmt.Errorf("credential %q contains a line break and cannot be sent in a header", c.Name)
		}
		subs = append(subs, substitution{placeholder: c.Placeholder, secret: v})
	}
	found := substituteAll(req, subs)
	var names []string
	used := map[string]string{}
	note := func(c *credential, v string) {
		names = append(names, c.Name)
		used[c.Name] = v
	}
	for i, c := range creds {
		if c.hasAWS {
			continue
		}
		injected := found[c.Placeholder]
		for _, r := range c.rules {
			if r.hosts != nil && !r.hosts.matchTLS(host, port) {
				continue
			}
			r.inj.inject(req, values[i])
			injected = true
		}
		if injected {
			note(c, values[i])
		}
	}
	for i, c := range creds {
		if !c.hasAWS {
			continue
		}
		ok, err := c.resign(req, values[i], host, port)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			note(c, values[i])
		}
	}
	return names, used, nil
}

// substitution is one placeholder and the value that replaces it.
type substitution struct{ placeholder, secret string }

// substitute replaces every occurrence of placeholder with secret (see
// substituteAll) and reports whether it replaced anything.
func substitute(req *http.Request, placeholder, secret string) bool {
	return substituteAll(req, []substitution{{placeholder, secret}})[placeholder]
}

// substituteAll replaces, in one pass, every occurrence of each placeholder
// with its secret in header values, the path and the query, and reports
// which placeholders it found. The secret is escaped for the part of the URL
// it lands in, so a value with reserved characters cannot change the
// request's structure. One pass means replaced text is never scanned again.
func substituteAll(req *http.Request, subs []substitution) map[string]bool {
	found := map[string]bool{}
	var raw, pathEsc, queryEsc []string
	for _, s := range subs {
		if s.placeholder == "" {
			continue
		}
		raw = append(raw, s.placeholder, s.secret)
		pathEsc = append(pathEsc, s.placeholder, url.PathEscape(s.secret))
		queryEsc = append(queryEsc, s.placeholder, url.QueryEscape(s.secret))
	}
	if len(raw) == 0 {
		return found
	}
	mark := func(text string) bool {
		hit := false
		for _, s := range subs {
			if s.placeholder != "" && strings.Contains(text, s.placeholder) {
				found[s.placeholder], hit = true, true
			}
		}
		return hit
	}
	var rawR replacer
	for k, vs := range req.Header {
		for i, v := range vs {
			if mark(v) {
				if rawR == nil {
					rawR = newReplacer(raw)
				}
				req.Header[k][i] = rawR.Replace(v)
			}
		}
	}
	u := req.URL
	if mark(u.Path) || mark(u.RawPath) {
		if rawR == nil {
			rawR = newReplacer(raw)
		}
		escaped := u.EscapedPath()
		newRaw := newReplacer(pathEsc).Replace(escaped)
		u.Path = rawR.Replace(u.Path)
		if p, err := url.PathUnescape(newRaw); err == nil && p == u.Path {
			u.RawPath = newRaw
		} else {
			u.RawPath = ""
		}
	}
	if mark(u.RawQuery) {
		u.RawQuery = newReplacer(queryEsc).Replace(u.RawQuery)
	}
	return found
}

type replacer interface{ Replace(string) string }

// newReplacer is strings.NewReplacer(pairs...), built only where a
// placeholder was found. One pair, the common case, needs no
// strings.Replacer: building one precomputes search tables on every
// request, and strings.ReplaceAll is the same single pass.
func newReplacer(pairs []string) replacer {
	if len(pairs) == 2 {
		return onePair{pairs[0], pairs[1]}
	}
	return strings.NewReplacer(pairs...)
}

type onePair struct{ old, new string }

func (o onePair) Replace(s string) string { return strings.ReplaceAll(s, o.old, o.new) }

// globMatch matches a paths: glob whose '*' matches any run of characters,
// '/' included.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
