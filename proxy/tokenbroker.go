package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// TokenBroker is the proxy's half of a brokered subscription login (an
// agent CLI's OAuth tokens; package broker holds the tokens). The proxy
// swaps its access-token placeholders on the API hosts, and hands every
// POST to its token endpoint to Rewrite, whose answer it then rewrites too.
// The hosts must also be bound to a Credential, so that they are decrypted
// and the session CA covers them.
type TokenBroker struct {
	Name     string   // named in records as the credential used
	Hosts    []string // API hosts, as in Credential.Hosts
	TokenURL string   // the token endpoint, https://host[:port]/path
	// Access returns every access placeholder handed out, each with its
	// real token.
	Access func() (placeholders, reals []string)
	// Secrets returns every real value the login has held, so the redactor
	// masks them from the moment they arrive.
	Secrets func() []string
	// Rewrite takes a token request's body and returns the body to send
	// and the function that rewrites the endpoint's answer; an error
	// refuses the request.
	Rewrite func(contentType string, body []byte) ([]byte, func(status int, body []byte) ([]byte, error), error)

	once     sync.Once
	err      error
	hosts    patterns
	endpoint target
	path     string
	heldMu   sync.Mutex
	held     []*credential // see heldCreds
	// pending maps an exchange whose request was rewritten to its
	// answer's rewriter. An exchange whose upstream round trip fails
	// leaves its entry behind: a few bytes per failed refresh.
	pending sync.Map
}

// heldCreds returns a fixed stand-in credential, named as the login, for
// every real value the login has held (Secrets), for the reflection
// guard. The list only grows, and an entry keeps its identity, so a cached
// matcher stays valid until the login's next refresh.
func (tb *TokenBroker) heldCreds() []*credential {
	if tb.Secrets == nil {
		return nil
	}
	values := tb.Secrets()
	tb.heldMu.Lock()
	defer tb.heldMu.Unlock()
	for _, v := range values {
		if v == "" || slices.ContainsFunc(tb.held, func(c *credential) bool { return c.Secret() == v }) {
			continue
		}
		tb.held = append(tb.held, &credential{Credential: &Credential{Name: tb.Name, Secret: func() string { return v }}})
	}
	return slices.Clip(tb.held)
}

// maxTokenBody bounds a token request or answer; real ones are a few
// kilobytes.
const maxTokenBody = 1 << 20

func (tb *TokenBroker) compile() error {
	tb.once.Do(func() {
		if tb.hosts, tb.err = parsePatterns(tb.Hosts, false); tb.err != nil {
			return
		}
		u, err := url.Parse(tb.TokenURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			tb.err = fmt.Errorf("token broker %q: token URL %q is not an https URL", tb.Name, tb.TokenURL)
			return
		}
		h, port, ok := splitTarget(u.Host, 443)
		if !ok {
			tb.err = fmt.Errorf("token broker %q: bad host in %q", tb.Name, tb.TokenURL)
			return
		}
		tb.endpoint = target{host: h, port: port}
		tb.path = u.Path
	})
	return tb.err
}

// brokerRequest rewrites a request for the token brokers: a POST to a token
// endpoint goes through its Rewrite (or is refused), and access
// placeholders on an API host become the real tokens.
func (p *Proxy) brokerRequest(req *http.Request, t *target, ex *exchange) *http.Response {
	for _, tb := range p.TokenBrokers {
		if err := tb.compile(); err != nil {
			return p.refusal(req, ex, http.StatusBadGateway, ActionError, err.Error())
		}
		if t.host == tb.endpoint.host && t.port == tb.endpoint.port && req.URL.Path == tb.path && req.Method == http.MethodPost {
			if r := p.brokerTokenRequest(req, tb, ex); r != nil {
				return r
			}
			continue
		}
		phs, reals := tb.Access()
		if !tb.hosts.matchTLS(t.host, t.port) {
			// Harmless by itself, but a sign of a confused or hostile
			// agent, as for configured credentials (warnPlaceholders).
			for _, ph := range phs {
				if requestMentions(req, ph) {
					ex.addWarning(fmt.Sprintf("placeholder for %q sent to %s", tb.Name, t.host))
					break
				}
			}
			continue
		}
		subs := make([]substitution, len(phs))
		for i := range phs {
			subs[i] = substitution{placeholder: phs[i], secret: reals[i]}
		}
		for _, hit := range substituteAll(req, subs) {
			if hit {
				brokerNote(ex, tb.Name)
				break
			}
		}
	}
	return nil
}

func (p *Proxy) brokerTokenRequest(req *http.Request, tb *TokenBroker, ex *exchange) *http.Response {
	// The CLIs send their refresh in the body alone. An endpoint that also
	// reads parameters from the query would take one the broker never saw
	// (a refresh token of the agent's own account, whose answer the
	// write-back would put in the user's store).
	if req.URL.RawQuery != "" || req.URL.ForceQuery {
		return p.refusal(req, ex, http.StatusForbidden, ActionDeny, tb.Name+": a token request with a query string")
	}
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, maxTokenBody+1))
		req.Body.Close()
		if err != nil {
			return p.refusal(req, ex, http.StatusBadGateway, ActionError, "reading the token request: "+err.Error())
		}
	}
	if len(body) > maxTokenBody {
		return p.refusal(req, ex, http.StatusForbidden, ActionDeny, "token request larger than 1 MiB")
	}
	out, answer, err := tb.Rewrite(req.Header.Get("Content-Type"), body)
	if err != nil {
		return p.refusal(req, ex, http.StatusForbidden, ActionDeny, fmt.Sprintf("%s: %v", tb.Name, err))
	}
	req.Body = io.NopCloser(bytes.NewReader(out))
	req.ContentLength = int64(len(out))
	req.Header.Set("Content-Length", strconv.Itoa(len(out)))
	req.TransferEncoding = nil
	// The answer is rewritten as text: no compression.
	req.Header.Set("Accept-Encoding", "identity")
	tb.pending.Store(ex, answer)
	brokerNote(ex, tb.Name)
	p.brokerSecrets(tb)
	return nil
}

// brokerResponse rewrites a token endpoint's answer to a request
// brokerRequest rewrote; an answer it cannot rewrite is refused, never
// passed on.
func (p *Proxy) brokerResponse(req *http.Request, res *http.Response, ex *exchange) *http.Response {
	for _, tb := range p.TokenBrokers {
		v, ok := tb.pending.LoadAndDelete(ex)
		if !ok {
			continue
		}
		answer := v.(func(int, []byte) ([]byte, error))
		body, err := io.ReadAll(io.LimitReader(res.Body, maxTokenBody+1))
		res.Body.Close()
		switch {
		case err != nil:
			return p.refusal(req, ex, http.StatusBadGateway, ActionError, fmt.Sprintf("%s: reading the token endpoint's answer: %v", tb.Name, err))
		case len(body) > maxTokenBody:
			return p.refusal(req, ex, http.StatusBadGateway, ActionError, tb.Name+": token endpoint answer larger than 1 MiB")
		case !identityEncoding(res.Header.Get("Content-Encoding")):
			return p.refusal(req, ex, http.StatusBadGateway, ActionError, tb.Name+": token endpoint answered compressed although asked not to")
		}
		out, err := answer(res.StatusCode, body)
		p.brokerSecrets(tb)
		if err != nil {
			return p.refusal(req, ex, http.StatusBadGateway, ActionError, fmt.Sprintf("%s: %v", tb.Name, err))
		}
		res.Body = io.NopCloser(bytes.NewReader(out))
		res.ContentLength = int64(len(out))
		res.Header.Set("Content-Length", strconv.Itoa(len(out)))
		res.Header.Del("Content-Encoding")
		res.TransferEncoding = nil
		return res
	}
	return res
}

func identityEncoding(ce string) bool {
	ce = strings.TrimSpace(strings.ToLower(ce))
	return ce == "" || ce == "identity"
}

// brokerSecrets tells the redactor of the login's real values, new ones
// included, before anything the proxy writes could hold them.
func (p *Proxy) brokerSecrets(tb *TokenBroker) {
	if tb.Secrets == nil || p.Redactor == nil {
		return
	}
	for _, s := range tb.Secrets() {
		p.Redactor.AddSecret(tb.Name, s)
	}
}

func brokerNote(ex *exchange, name string) {
	for _, n := range strings.Split(ex.rec.Credential, ",") {
		if n == name {
			return
		}
	}
	ex.rec.Action = ActionInject
	if ex.rec.Credential != "" {
		ex.rec.Credential += ","
	}
	ex.rec.Credential += name
}
