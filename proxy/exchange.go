package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentvault/agentvault/vocab"
)

// exchange follows one request from onRequest to the end of its response body.
type exchange struct {
	start    time.Time
	rec      Record
	reqBody  *countingBody
	respBody *countingBody
	once     sync.Once
	refused  bool
	leak     *leakReader // scans the request body, when the leak guard has secrets to look for
	redacted atomic.Bool
	snap     *requestSnapshot // the request before injection, for a replay after rotation
	injected []string         // credentials put on the request
	target   *target
}

func (ex *exchange) addWarning(w string) {
	if ex.rec.Warning != "" {
		ex.rec.Warning += "; "
	}
	ex.rec.Warning += w
}

// countingBody counts bytes read and calls done once, at EOF or Close.
type countingBody struct {
	rc   io.ReadCloser
	n    atomic.Int64
	done func()
	once sync.Once
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	if err != nil && c.done != nil {
		c.once.Do(c.done)
	}
	return n, err
}

func (c *countingBody) Close() error {
	err := c.rc.Close()
	if c.done != nil {
		c.once.Do(c.done)
	}
	return err
}

func (c *countingBody) readyNow() bool { return readyNow(c.rc) }

// Write lets a 101 response body (an io.ReadWriteCloser) stay writable.
func (c *countingBody) Write(p []byte) (int, error) {
	w, ok := c.rc.(io.Writer)
	if !ok {
		return 0, errors.New("body is not writable")
	}
	return w.Write(p)
}

// finish emits the exchange's record once.
func (p *Proxy) finish(ex *exchange) {
	ex.once.Do(func() {
		if ex.reqBody != nil {
			ex.rec.ReqBytes = ex.reqBody.n.Load()
		}
		if ex.respBody != nil {
			ex.rec.RespBytes = ex.respBody.n.Load()
		}
		ex.rec.Duration = time.Since(ex.start)
		ex.rec.Redacted = ex.redacted.Load()
		if ex.leak != nil && ex.leak.hit != nil && !ex.leak.block {
			ex.addWarning(fmt.Sprintf("secret of %q in a request body headed to %s, which it is not bound to", ex.leak.hit.Name, ex.rec.Host))
		}
		if ex.leak != nil && ex.leak.unreadable != "" && !ex.leak.block {
			ex.addWarning(fmt.Sprintf("%s headed to %s: the rest sent unscanned", ex.leak.unreadable, ex.rec.Host))
		}
		p.emit(ex.rec)
	})
}

// roundTrip is martian's round tripper.
func (p *Proxy) roundTrip(req *http.Request) (*http.Response, error) {
	var ex *exchange
	var cc clientConn
	if ctx := ctxOf(req); ctx != nil {
		cc = ctx.Session()
		if v, ok := ctx.Get(keyEx); ok {
			ex = v.(*exchange)
		}
	}
	return p.forward(req, cc, ex), nil
}

// forward applies every rule about what a request may carry, sends it and
// returns the response; refusals come back as ordinary responses. cc is the
// client's connection (nil when unknown); ex, when nil, is made here. The
// exchange's record is emitted when the response body ends or is closed.
func (p *Proxy) forward(req *http.Request, cc clientConn, ex *exchange) *http.Response {
	if ex == nil {
		ex = &exchange{start: time.Now()}
	}
	ex.rec = Record{Time: ex.start, Method: req.Method, Path: req.URL.Path}
	if req.Body != nil && req.Body != http.NoBody {
		ex.reqBody = &countingBody{rc: req.Body}
		req.Body = ex.reqBody
	}

	var t *target
	if cc != nil {
		if v, ok := cc.Get(keyTarget); ok {
			t = v.(*target)
		}
	}
	var res *http.Response
	if t != nil {
		ex.target = t
		if t.warning != "" {
			ex.addWarning(t.warning)
		}
		res = p.prepareTLS(req, cc, t, ex)
	} else {
		res = p.preparePlain(req, ex)
	}
	if res == nil {
		removeHopHeaders(req.Header, isUpgrade(req.Header))
		if !p.Guard.reflectOff() {
			limitAcceptEncoding(req.Header)
		}
		var err error
		res, err = p.send(req, ex)
		switch {
		case err != nil && ex.leak != nil && ex.leak.hit != nil && ex.leak.block:
			res = p.refusal(req, ex, http.StatusForbidden, ActionLeakBlocked,
				fmt.Sprintf("secret of %q in the request body headed to %s, which it is not bound to", ex.leak.hit.Name, ex.rec.Host))
		case err != nil && ex.leak != nil && ex.leak.unreadable != "" && ex.leak.block:
			res = unsupportedCoding(p.refusal(req, ex, http.StatusUnsupportedMediaType, ActionError,
				fmt.Sprintf("%s headed to %s", ex.leak.unreadable, ex.rec.Host)))
		case err != nil:
			res = p.upstreamError(req, ex, err)
		default:
			res = p.maybeRetry(req, res, ex)
			res = p.brokerResponse(req, res, ex) // tokenbroker.go
			ex.rec.Status = res.StatusCode
			if res.StatusCode != http.StatusSwitchingProtocols {
				removeHopHeaders(res.Header, false)
			}
			p.guardResponse(req, res, ex)
		}
	}
	ex.respBody = &countingBody{rc: res.Body, done: func() { p.finish(ex) }}
	res.Body = ex.respBody
	return res
}

// send hands req to the upstream: bodiless idempotent HTTPS requests on the
// proxy's own connection pool (pool.go), the rest through its transport.
// The client's "Connection: close" concerns the client's connection alone;
// the upstream connection stays open for the next request, whoever sends it.
func (p *Proxy) send(req *http.Request, ex *exchange) (*http.Response, error) {
	out := req
	if req.Close {
		out = req.WithContext(req.Context()) // martian reads req.Close afterwards
		out.Close = false
	}
	if p.pool != nil && p.pool.usable(out, ex.rec.Host, ex.rec.Port) {
		return p.pool.roundTrip(out, ex.rec.Host, ex.rec.Port)
	}
	return p.transport.RoundTrip(out)
}

// prepareTLS applies the rules to a request inside a MITM'd CONNECT. It
// returns a refusal, or nil with the request ready to send.
func (p *Proxy) prepareTLS(req *http.Request, sess clientConn, t *target, ex *exchange) *http.Response {
	ex.rec.Scheme, ex.rec.Host, ex.rec.Port = "https", t.host, t.port
	if !sess.IsSecure() {
		return p.refusal(req, ex, http.StatusForbidden, ActionDeny,
			fmt.Sprintf("plain HTTP inside a CONNECT to %s is refused", t.host))
	}
	if h, port, ok := splitTarget(req.Host, 443); !ok || h != t.host || port != t.port {
		return p.refusal(req, ex, http.StatusMisdirectedRequest, ActionDeny, "Host header does not match the CONNECT target")
	}
	if req.TLS != nil && req.TLS.ServerName != "" && normalizeHost(req.TLS.ServerName) != t.host {
		return p.refusal(req, ex, http.StatusMisdirectedRequest, ActionDeny, "TLS server name does not match the CONNECT target")
	}
	// Requests go to the CONNECT target, never to what the Host header says.
	req.URL.Scheme = "https"
	req.URL.Host = joinHostPort(t.host, t.port)
	ex.rec.Action = ActionPass
	// Before injection: afterwards the bound secrets are rightly present.
	if r := p.checkLeak(req, t.host, t.port, ex); r != nil {
		return r
	}
	if p.Refresh != nil {
		ex.snap = snapshot(req)
	}
	names, used, err := p.injectAll(req, t)
	if err != nil {
		return p.refusal(req, ex, http.StatusBadGateway, ActionError, err.Error())
	}
	if ex.snap != nil {
		ex.snap.used = used
	}
	if len(names) > 0 {
		ex.rec.Action, ex.rec.Credential = ActionInject, strings.Join(names, ",")
		ex.injected = names
	}
	if r := p.brokerRequest(req, t, ex); r != nil { // tokenbroker.go
		return r
	}
	p.warnPlaceholders(req, t.host, t.port, ex)
	return nil
}

// preparePlain applies the rules to an absolute-form plain-HTTP request.
func (p *Proxy) preparePlain(req *http.Request, ex *exchange) *http.Response {
	host, port, ok := splitTarget(req.URL.Host, defaultPort(req.URL.Scheme))
	ex.rec.Scheme, ex.rec.Host, ex.rec.Port = "http", host, port
	if req.URL.Scheme != "http" || !ok {
		return p.refusal(req, ex, http.StatusBadRequest, ActionDeny, "only absolute http:// requests and CONNECT are proxied")
	}
	if !p.Guard.leakOff() {
		// As for a CONNECT target (admit.go): the name reaches DNS.
		if c := p.leakNameMatcher(host, -1).findString(strings.ToLower(host)); c != nil {
			why := fmt.Sprintf("the request's host name carries the secret of %q", c.Name)
			if p.Guard.leakBlocks() {
				return p.refusal(req, ex, http.StatusForbidden, ActionLeakBlocked, why)
			}
			ex.addWarning(why)
		}
	}
	if p.policy.credentialedName(host) {
		return p.refusal(req, ex, http.StatusForbidden, ActionDeny,
			fmt.Sprintf("%s has a credential and is only reachable over HTTPS", host))
	}
	if d := p.policy.egress(host, port); !d.allowed {
		return p.refusal(req, ex, http.StatusForbidden, ActionDeny, fmt.Sprintf("%s is denied by %s", host, d.rule))
	}
	ex.rec.Action = ActionPass
	if r := p.checkLeak(req, host, -1, ex); r != nil {
		return r
	}
	p.warnPlaceholders(req, host, -1, ex)
	return nil
}

// warnPlaceholders notes a placeholder that travels to a host its credential
// is not bound to: harmless by itself, but a sign of a confused or hostile agent.
func (p *Proxy) warnPlaceholders(req *http.Request, host string, port int, ex *exchange) {
	for _, c := range p.policy.creds {
		if c.Placeholder == "" || (port > 0 && c.hosts.matchTLS(host, port)) {
			continue
		}
		if requestMentions(req, c.Placeholder) {
			ex.addWarning(fmt.Sprintf("placeholder for %q sent to %s", c.Name, host))
		}
	}
}

func requestMentions(req *http.Request, s string) bool {
	if strings.Contains(req.URL.Path, s) || strings.Contains(req.URL.RawQuery, s) {
		return true
	}
	for _, vs := range req.Header {
		for _, v := range vs {
			if strings.Contains(v, s) {
				return true
			}
		}
	}
	return false
}

// refusal builds the response for a request the proxy will not send.
func (p *Proxy) refusal(req *http.Request, ex *exchange, status int, action Action, why string) *http.Response {
	ex.refused = true
	ex.rec.Action, ex.rec.Status = action, status
	if action == ActionError {
		ex.rec.Error = why
	} else {
		ex.rec.Warning = why
	}
	return textResponse(req, status, p.mask("agentvault: "+why+"\n"))
}

func textResponse(req *http.Request, status int, body string) *http.Response {
	return &http.Response{
		StatusCode:    status,
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
		ContentLength: int64(len(body)),
		Body:          io.NopCloser(strings.NewReader(body)),
		Request:       req,
	}
}

// upstreamError turns a failed round trip into a 502 (403 for an address the
// rules refuse) whose body says why: martian's own 502 has an empty body.
func (p *Proxy) upstreamError(req *http.Request, ex *exchange, err error) *http.Response {
	why := describeUpstreamError(ex.rec.Host, err)
	if isRefusedAddress(err) {
		return p.refusal(req, ex, http.StatusForbidden, ActionDeny, why)
	}
	return p.refusal(req, ex, http.StatusBadGateway, ActionError, why)
}

func describeUpstreamError(host string, err error) string {
	var cv *tls.CertificateVerificationError
	msg := err.Error()
	switch {
	case errors.As(err, &cv):
		return fmt.Sprintf("upstream TLS verification failed for %s: %v", host, err)
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		return fmt.Sprintf("upstream TLS failed for %s: %v", host, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("upstream %s timed out: %v", host, err)
	}
	return fmt.Sprintf("upstream %s: %v", host, err)
}

func isRefusedAddress(err error) bool { return errors.Is(err, errRefusedAddress) }

// removeHopHeaders strips hop-by-hop headers and those the Connection header
// lists. An upgrade keeps "Connection: Upgrade" and "Upgrade", which the
// upstream needs to switch protocols.
func removeHopHeaders(h http.Header, upgrade bool) {
	for _, v := range h.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" && !(upgrade && strings.EqualFold(f, "Upgrade")) {
				h.Del(f)
			}
		}
	}
	up := h.Get("Upgrade")
	for _, k := range vocab.HopHeaders {
		delete(h, k) // spelled canonically: Del would canonicalise it again
	}
	if upgrade {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", up)
		h.Del("Sec-WebSocket-Extensions") // compressed frames would hide secrets from the relay's guards
	}
}

func isUpgrade(h http.Header) bool {
	if h.Get("Upgrade") == "" {
		return false
	}
	for _, v := range h.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "upgrade") {
				return true
			}
		}
	}
	return false
}
