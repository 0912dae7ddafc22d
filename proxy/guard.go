package proxy

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/agentvault/agentvault/vocab"
)

// Guard says what the proxy does when it sees a real secret where it should
// not be. The zero value is the safe default: block leaks, redact reflections.
type Guard struct {
	Leak       vocab.LeakMode       // "" is vocab.LeakBlock
	Reflection vocab.ReflectionMode // "" is vocab.ReflectionRedact
}

func (g Guard) leakOff() bool    { return g.Leak == vocab.LeakOff }
func (g Guard) leakBlocks() bool { return g.Leak == "" || g.Leak == vocab.LeakBlock }
func (g Guard) reflectOff() bool { return g.Reflection == vocab.ReflectionOff }
func (g Guard) validate() error {
	switch g.Leak {
	case "", vocab.LeakBlock, vocab.LeakWarn, vocab.LeakOff:
	default:
		return fmt.Errorf("guard.leak %q: want block, warn or off", g.Leak)
	}
	switch g.Reflection {
	case "", vocab.ReflectionRedact, vocab.ReflectionOff:
	default:
		return fmt.Errorf("guard.reflection %q: want redact or off", g.Reflection)
	}
	return nil
}

// maxBuffered is the largest known-length response the reflection guard
// buffers whole (keeping Content-Length and keep-alive); larger or unknown
// lengths stream through the redactor chunked.
const maxBuffered = 1 << 20

// unboundCreds are the credentials whose secrets must not travel to host:port
// (port < 0: plain HTTP, where every secret is out of place).
func (p *Proxy) unboundCreds(host string, port int) []*credential {
	var out []*credential
	for _, c := range p.policy.creds {
		if port < 0 || !c.hosts.matchTLS(host, port) {
			out = append(out, c)
		}
	}
	return out
}

// checkLeak looks for other credentials' secrets in a request's header,
// path and query, and arranges for its body to be scanned as it streams.
// It returns a refusal when the guard blocks.
func (p *Proxy) checkLeak(req *http.Request, host string, port int, ex *exchange) *http.Response {
	if p.Guard.leakOff() {
		return nil
	}
	m := p.leakMatcher(host, port)
	if m.empty() {
		return nil
	}
	// The agent picks the method as freely as the path.
	hit := m.findString(req.Method)
	if hit == nil {
		hit = m.findString(req.URL.EscapedPath())
	}
	if hit == nil {
		hit = m.findString(req.URL.Path)
	}
	if hit == nil {
		hit = m.findString(req.URL.RawQuery)
	}
	if hit == nil {
		for _, vs := range req.Header {
			for _, v := range vs {
				if c := m.findString(v); c != nil {
					hit = c
				}
			}
		}
	}
	if hit == nil {
		hit = findInNames(p.leakNameMatcher(host, port), req.Header)
	}
	if hit == nil {
		hit = findUnescapedRequest(m, req)
	}
	if hit != nil {
		if r := p.leakFound(req, ex, hit, host); r != nil {
			return r
		}
	}
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	// A compressed body is scanned decoded (reqcodings.go); one in a coding
	// the guard cannot read is not sent when blocking.
	var codings []string
	if _, ok := req.Header["Content-Encoding"]; ok && req.ContentLength != 0 {
		var why string
		if codings, why = requestCodings(req.Header, host); why != "" {
			if r := p.unreadableBody(req, ex, why); r != nil {
				return r
			}
		}
	}
	if req.ContentLength >= 0 && req.ContentLength <= maxBuffered {
		// A small body is checked whole before the upstream is contacted,
		// so a blocked request never reaches it at all.
		buf, err := io.ReadAll(io.LimitReader(req.Body, req.ContentLength))
		if err != nil {
			return p.refusal(req, ex, http.StatusBadRequest, ActionError, "reading the request body: "+err.Error())
		}
		req.Body = io.NopCloser(bytes.NewReader(buf))
		if c := m.findLeak(buf); c != nil {
			return p.leakFound(req, ex, c, host)
		}
		if len(codings) > 0 {
			c, why := scanCodedBody(buf, codings, m)
			if c != nil {
				return p.leakFound(req, ex, c, host)
			}
			if why != "" {
				return p.unreadableBody(req, ex, why+" headed to "+host)
			}
		}
		return nil
	}
	body := guardRequestTrailers(req, m, func() *leakReader { return ex.leak })
	if len(codings) > 0 {
		cr := newCodedLeakReader(body, codings, m, p.Guard.leakBlocks(), maxHeldCoded)
		ex.leak = cr.lr
		req.Body = cr
		return nil
	}
	// Larger or unknown lengths are scanned as they stream: the part of the
	// body that could begin a secret is held back until it cannot.
	lr := newLeakReader(body, m, p.Guard.leakBlocks())
	ex.leak = lr
	req.Body = lr
	return nil
}

// findInNames looks for secrets in header field names: net/http has put
// them in its canonical case, so nm holds lower-cased forms and each name
// is lower-cased before the search.
func findInNames(nm *matcher, h http.Header) *credential {
	if nm.empty() {
		return nil
	}
	var buf [64]byte
	for k := range h {
		if c := nm.find(appendLower(buf[:0], k)); c != nil {
			return c
		}
	}
	return nil
}

// redactFields applies the reflection guard to a header or trailer: a
// secret in a value becomes its placeholder, and a field whose name
// carries one is dropped (a name cannot hold a placeholder's characters
// reliably, and nothing needs such a field).
func redactFields(h http.Header, fm fieldMatchers, ex *exchange) {
	var buf [64]byte
	for k, vs := range h {
		if fm.names.find(appendLower(buf[:0], k)) != nil {
			delete(h, k)
			ex.redacted.Store(true)
			continue
		}
		for i, v := range vs {
			if v, hit := fm.values.redactString(v); hit {
				h[k][i] = v
				ex.redacted.Store(true)
			}
		}
	}
}

// guardRequestTrailers returns req's body, made to check req's trailers
// when it ends: a chunked body may end in trailer fields, which net/http
// reads into req.Trailer at the body's end and the transport sends after
// it. A secret there is noted on the exchange's leak reader and, when
// blocking, the body ends with errLeak instead, so the trailers are never
// sent. Bodies that cannot carry trailers are returned as they are.
func guardRequestTrailers(req *http.Request, m *matcher, lr func() *leakReader) io.ReadCloser {
	if len(req.TransferEncoding) == 0 {
		return req.Body
	}
	return &atEOF{ReadCloser: req.Body, f: func() error {
		for _, vs := range req.Trailer {
			for _, v := range vs {
				if c := m.findString(v); c != nil {
					l := lr()
					if l.hit == nil {
						l.hit = c
					}
					if l.block {
						return errLeak
					}
				}
			}
		}
		return nil
	}}
}

// atEOF is a body that calls f when its source ends, before passing the end
// on; an error from f replaces io.EOF.
type atEOF struct {
	io.ReadCloser
	f    func() error
	done bool
}

func (a *atEOF) Read(p []byte) (int, error) {
	n, err := a.ReadCloser.Read(p)
	if err == io.EOF && !a.done {
		a.done = true
		if ferr := a.f(); ferr != nil {
			return n, ferr
		}
	}
	return n, err
}

func (a *atEOF) readyNow() bool { return readyNow(a.ReadCloser) }

// unreadableBody handles a request body the leak guard cannot read: refused
// with 415 (an error record naming the coding) when blocking, since the
// guard would otherwise wave through whatever the coding hides; noted and
// sent when warning.
func (p *Proxy) unreadableBody(req *http.Request, ex *exchange, why string) *http.Response {
	if p.Guard.leakBlocks() {
		return unsupportedCoding(p.refusal(req, ex, http.StatusUnsupportedMediaType, ActionError, why))
	}
	ex.addWarning(why + ": sent unscanned")
	return nil
}

// unsupportedCoding says, as RFC 9110 asks of a 415 for a content coding,
// which codings would have been read.
func unsupportedCoding(res *http.Response) *http.Response {
	res.Header.Set("Accept-Encoding", "gzip, deflate")
	return res
}

// findUnescapedRequest looks for secrets in the query and the header values
// percent-decoded, so that escapes mixing encoded and plain characters do
// not hide one (the path is decoded already).
func findUnescapedRequest(m *matcher, req *http.Request) *credential {
	if strings.IndexByte(req.URL.RawQuery, '%') >= 0 {
		if c := findUnescaped(m, []byte(req.URL.RawQuery)); c != nil {
			return c
		}
	}
	for _, vs := range req.Header {
		for _, v := range vs {
			if strings.IndexByte(v, '%') >= 0 {
				if c := findUnescaped(m, []byte(v)); c != nil {
					return c
				}
			}
		}
	}
	return nil
}

// leakFound records a leak and, when blocking, returns the refusal.
func (p *Proxy) leakFound(req *http.Request, ex *exchange, c *credential, host string) *http.Response {
	why := fmt.Sprintf("secret of %q headed to %s, which it is not bound to", c.Name, host)
	if p.Guard.leakBlocks() {
		return p.refusal(req, ex, http.StatusForbidden, ActionLeakBlocked, why)
	}
	ex.addWarning(why)
	return nil
}

// guardResponse applies the reflection guard to a response on its way back
// to the agent: secrets in headers and body become their placeholders. A
// body in a content coding the guard cannot read is not passed on: res is
// turned, in place, into a 502 refusal recorded as an error, since the guard
// would otherwise wave through whatever the coding hides.
func (p *Proxy) guardResponse(req *http.Request, res *http.Response, ex *exchange) {
	if p.Guard.reflectOff() || res.StatusCode == http.StatusSwitchingProtocols {
		return
	}
	fm := p.reflectMatchers(true)
	m := fm.values
	if m.empty() {
		return
	}
	redactFields(res.Header, fm, ex)
	if req.Method == http.MethodHead || res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified ||
		res.Body == nil || res.Body == http.NoBody || res.ContentLength == 0 {
		return // no body: nothing to scan, nothing to decode
	}
	codings, why := contentCodings(res.Header)
	if why != "" {
		res.Body.Close()
		*res = *p.refusal(req, ex, http.StatusBadGateway, ActionError, why)
		return
	}
	body := res.Body
	encoded := len(codings) > 0
	// The last coding listed was applied last, so it is undone first.
	for i := len(codings) - 1; i >= 0; i-- {
		body = lazyDecoder(body, decoders[codings[i]])
	}
	if encoded {
		res.Header.Del("Content-Encoding")
		res.ContentLength = -1
		res.Header.Del("Content-Length")
		res.Uncompressed = true
	}
	if !encoded && res.ContentLength >= 0 && res.ContentLength <= maxBuffered && !isEventStream(res) {
		// Small known-length bodies are read whole, keeping Content-Length
		// and so keep-alive; one pass of the needles over the buffer.
		buf := make([]byte, res.ContentLength)
		n, err := io.ReadFull(body, buf)
		buf, hit := m.redact(buf[:n])
		if hit {
			ex.redacted.Store(true)
		}
		body.Close()
		redactFields(res.Trailer, fm, ex)
		if err == nil {
			res.Body = io.NopCloser(bytes.NewReader(buf))
			res.ContentLength = int64(len(buf))
			res.Header.Set("Content-Length", fmt.Sprint(len(buf)))
			return
		}
		// A short read: hand on what arrived and let the client see the
		// failure where it happened.
		res.Body = readCloser{io.MultiReader(bytes.NewReader(buf), errReader{io.ErrUnexpectedEOF}), io.NopCloser(nil)}
		res.ContentLength = -1
		res.Header.Del("Content-Length")
		return
	}
	red := newRedactor(body, m, func() { ex.redacted.Store(true) })
	// net/http's body fills res.Trailer when the body ends, and
	// Response.Write sends the trailers right after the body's last read.
	res.Body = &atEOF{ReadCloser: red, f: func() error { redactFields(res.Trailer, fm, ex); return nil }}
	res.ContentLength = -1
	res.Header.Del("Content-Length")
}

func isEventStream(res *http.Response) bool {
	return strings.HasPrefix(strings.ToLower(res.Header.Get("Content-Type")), "text/event-stream")
}

// limitAcceptEncoding keeps only the content codings the reflection guard can
// decode, so a secret cannot hide from it in a brotli or zstd body.
func limitAcceptEncoding(h http.Header) {
	v := h.Get("Accept-Encoding")
	if v == "" || len(h["Accept-Encoding"]) == 1 && acceptsOnlyDecodable(v) {
		return
	}
	var keep []string
	for _, part := range strings.Split(v, ",") {
		name := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		if name == "identity" || decoders[name] != nil {
			keep = append(keep, strings.TrimSpace(part))
		}
	}
	if len(keep) == 0 {
		h.Set("Accept-Encoding", "identity")
		return
	}
	h.Set("Accept-Encoding", strings.Join(keep, ", "))
}

// acceptsOnlyDecodable reports whether every coding v lists is one the
// guard can decode, so that limitAcceptEncoding may leave v as it is (the
// common "gzip" or "gzip, deflate") without building anything.
func acceptsOnlyDecodable(v string) bool {
	for {
		part, rest, more := strings.Cut(v, ",")
		name, _, _ := strings.Cut(part, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "identity" && decoders[name] == nil {
			return false
		}
		if !more {
			return true
		}
		v = rest
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err == nil {
		return 0, io.EOF
	}
	return 0, e.err
}

// lazyDecoder opens the decoder on first Read, so that building the response
// does not block on the upstream's first bytes.
func lazyDecoder(src io.ReadCloser, open func(io.Reader) (io.ReadCloser, error)) io.ReadCloser {
	return &lazy{src: src, open: open}
}

type lazy struct {
	src  io.ReadCloser
	open func(io.Reader) (io.ReadCloser, error)
	dec  io.ReadCloser
	err  error
}

func (l *lazy) Read(p []byte) (int, error) {
	if l.dec == nil && l.err == nil {
		l.dec, l.err = l.open(l.src)
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.dec.Read(p)
}

func (l *lazy) Close() error {
	if l.dec != nil {
		l.dec.Close()
	}
	return l.src.Close()
}

// newDeflateReader reads HTTP "deflate", which is zlib-wrapped in practice
// but raw DEFLATE from some servers.
func newDeflateReader(r io.Reader) (io.ReadCloser, error) {
	br := &peekReader{r: r}
	head := make([]byte, 2)
	n, _ := io.ReadFull(br, head)
	br.replay = head[:n]
	if n == 2 && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

type peekReader struct {
	r      io.Reader
	replay []byte
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.replay) > 0 {
		n := copy(b, p.replay)
		p.replay = p.replay[n:]
		return n, nil
	}
	return p.r.Read(b)
}
