package proxy

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
	req.Header.Set(h.name, strings.ReplaceAll(h.format, "{{secret}}", secret))
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
	case "", "placeholder":
		return nil, nil
	case "bearer":
		return bearerInjector{}, nil
	case "basic":
		u := in.Username
		if u == "" {
			u = "x-access-token"
		}
		return basicInjector{username: u}, nil
	case "header":
		if in.Name == "" {
			return nil, fmt.Errorf("header injection needs a header name")
		}
		f := in.Format
		if f == "" {
			f = "{{secret}}"
		}
		return headerInjector{name: http.CanonicalHeaderKey(in.Name), format: f}, nil
	case "aws-sigv4":
		// Re-signing can fail and must run after every other change to the
		// request, so the credential runs it itself (see credential.apply).
		return nil, nil
	case "query":
		if in.Name == "" {
			return nil, fmt.Errorf("query injection needs a parameter name")
		}
		return queryInjector{name: in.Name}, nil
	default:
		return nil, fmt.Errorf("injection type %q is not supported by the proxy", in.Type)
	}
}

// substitute replaces every occurrence of placeholder with secret in header
// values, the path and the query, and reports whether it replaced anything.
// The secret is escaped for the part of the URL it lands in, so a value with
// reserved characters cannot change the request's structure.
func substitute(req *http.Request, placeholder, secret string) bool {
	if placeholder == "" {
		return false
	}
	found := false
	for k, vs := range req.Header {
		for i, v := range vs {
			if strings.Contains(v, placeholder) {
				req.Header[k][i] = strings.ReplaceAll(v, placeholder, secret)
				found = true
			}
		}
	}
	u := req.URL
	if strings.Contains(u.Path, placeholder) || strings.Contains(u.RawPath, placeholder) {
		escaped := u.EscapedPath()
		u.Path = strings.ReplaceAll(u.Path, placeholder, secret)
		if p, err := url.PathUnescape(strings.ReplaceAll(escaped, placeholder, url.PathEscape(secret))); err == nil && p == u.Path {
			u.RawPath = strings.ReplaceAll(escaped, placeholder, url.PathEscape(secret))
		} else {
			u.RawPath = ""
		}
		found = true
	}
	if strings.Contains(u.RawQuery, placeholder) {
		u.RawQuery = strings.ReplaceAll(u.RawQuery, placeholder, url.QueryEscape(secret))
		found = true
	}
	return found
}

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
