package proxy

import (
	"bufio"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/martian/v3"
)

// Keys of what the proxy keeps on a martian Session (one client connection).
const (
	keyAuthed = "agentvault.authed" // the connection presented the password
	keyTarget = "agentvault.target" // *target of a MITM'd CONNECT
	keyEx     = "agentvault.exchange"
)

// target is the CONNECT target of a MITM'd connection: the only host and port
// its requests are matched against.
type target struct {
	host string
	port int
	// warning is what the CONNECT itself earned (a secret in its host name
	// under guard.leak: warn); a MITM'd CONNECT has no record of its own,
	// so every request inside carries it.
	warning string
}

func basicAuthValue(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// authenticate checks the request's Proxy-Authorization and remembers success
// on the connection: requests inside a MITM'd tunnel carry none.
func (p *Proxy) authenticate(req *http.Request, sess clientConn) bool {
	if v, ok := sess.Get(keyAuthed); ok && v.(bool) {
		return true
	}
	if isTransparentHTTP(req) {
		// Plain HTTP on the sandbox's port 80 (see transparent.go): only a
		// process inside the sandbox reaches it, and it never gets a secret.
		sess.Set(keyAuthed, true)
		return true
	}
	got := req.Header.Get("Proxy-Authorization")
	ok := subtle.ConstantTimeCompare([]byte(got), []byte(p.authValue)) == 1
	if !ok {
		// Accept any capitalisation of the scheme, as RFC 7235 allows.
		if i := strings.IndexByte(got, ' '); i > 0 && strings.EqualFold(got[:i], "basic") {
			ok = subtle.ConstantTimeCompare([]byte("Basic"+got[i:]), []byte(p.authValue)) == 1
		}
	}
	if ok {
		sess.Set(keyAuthed, true)
	}
	return ok
}

// refuse takes the connection from martian, writes a complete short response
// (its body masked) and closes it. martian's own refusals are malformed (see
// docs/development/martian.md).
func (p *Proxy) refuse(sess clientConn, status int, header http.Header, body string) {
	body = p.mask(body)
	conn, brw, err := sess.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	res := &http.Response{
		StatusCode:    status,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{},
		ContentLength: int64(len(body)),
		Body:          io.NopCloser(strings.NewReader(body)),
		Close:         true,
	}
	for k, v := range header {
		res.Header[k] = v
	}
	res.Header.Set("Content-Type", "text/plain; charset=utf-8")
	res.Header.Set("Connection", "close")
	res.Write(brw)
	brw.Flush()
}

func proxyAuthHeader() http.Header {
	return http.Header{"Proxy-Authenticate": {`Basic realm="agentvault"`}}
}

// clientConn is what the hooks need of one client connection:
// *martian.Session for the connections martian serves, *decryptedConn for the
// ones the proxy decrypted and serves itself (decrypted.go). After Hijack the
// caller owns the connection and must close it.
type clientConn interface {
	Get(key string) (any, bool)
	Set(key string, v any)
	Hijack() (net.Conn, *bufio.ReadWriter, error)
	IsSecure() bool
}

var _ clientConn = (*martian.Session)(nil)

// onRequest is martian's request modifier.
func (p *Proxy) onRequest(req *http.Request) {
	ctx := ctxOf(req)
	if ctx == nil {
		return
	}
	if ex := p.beginRequest(req, ctx.Session()); ex != nil {
		ctx.Set(keyEx, ex)
	}
}

// beginRequest authenticates a request and answers what is not forwarded
// (CONNECT, 407, "Expect: 100-continue" on martian's connections); it returns
// the exchange of a request to forward, or nil when cc was hijacked.
func (p *Proxy) beginRequest(req *http.Request, cc clientConn) *exchange {
	if req.Method == http.MethodConnect {
		p.onConnect(req, cc)
		return nil
	}
	if _, inTunnel := cc.Get(keyTarget); !inTunnel && !p.authenticate(req, cc) {
		p.emit(Record{Time: time.Now(), Action: ActionAuthFailed, Method: req.Method, Scheme: "http",
			Host: normalizeHost(req.URL.Hostname()), Port: portOf(req.URL), Path: req.URL.Path, Status: http.StatusProxyAuthRequired})
		p.refuse(cc, http.StatusProxyAuthRequired, proxyAuthHeader(), "agentvault: proxy authentication required\n")
		return nil
	}
	req.Header.Del("Proxy-Authorization")
	ex := &exchange{start: time.Now()}
	if _, own := cc.(*decryptedConn); !own && strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		// martian does not relay 100 Continue; answer it here and carry the
		// exchange to its end on this goroutine.
		p.serveExpectContinue(req, cc, ex)
		return nil
	}
	return ex
}

func portOf(u interface{ Port() string }) int {
	var n int
	fmt.Sscanf(u.Port(), "%d", &n)
	return n
}

// onConnect decides what a CONNECT becomes: 407, 403, a MITM'd connection
// (left to martian), or a plain tunnel.
func (p *Proxy) onConnect(req *http.Request, sess clientConn) {
	now := time.Now()
	host, port, ok := splitTarget(req.Host, 443)
	rec := Record{Time: now, Method: http.MethodConnect, Scheme: "https", Host: host, Port: port}
	if _, inside := sess.Get(keyTarget); inside {
		// A CONNECT inside a decrypted connection would be a second,
		// unchecked hop; nothing needs it.
		rec.Action, rec.Status, rec.Warning = ActionDeny, http.StatusBadRequest, "CONNECT inside a CONNECT"
		p.emit(rec)
		p.refuse(sess, http.StatusBadRequest, nil, "agentvault: CONNECT inside a CONNECT is refused\n")
		return
	}
	if !p.authenticate(req, sess) {
		rec.Action, rec.Status = ActionAuthFailed, http.StatusProxyAuthRequired
		p.emit(rec)
		p.refuse(sess, http.StatusProxyAuthRequired, proxyAuthHeader(), "agentvault: proxy authentication required\n")
		return
	}
	if !ok {
		rec.Action, rec.Status, rec.Error = ActionDeny, http.StatusBadRequest, "malformed CONNECT target"
		p.emit(rec)
		p.refuse(sess, http.StatusBadRequest, nil, "agentvault: malformed CONNECT target\n")
		return
	}
	a := p.admit(host, port, &rec)
	if a.status != 0 {
		p.emit(rec)
		p.refuse(sess, a.status, nil, a.body)
		return
	}
	if a.mitm {
		p.mitm(sess, &target{host: host, port: port, warning: rec.Warning}, rec)
		return
	}
	p.tunnel(req, sess, rec)
}

func isIP(h string) bool { return net.ParseIP(h) != nil }

// tunnel relays bytes for a CONNECT that needs no inspection. martian's own
// tunnel would MITM it, since MITM is all-or-nothing there.
func (p *Proxy) tunnel(req *http.Request, sess clientConn, rec Record) {
	up, err := p.dial.dialTunnel(req.Context(), rec.Host, rec.Port)
	if err != nil {
		status := http.StatusBadGateway
		rec.Action = ActionError
		if isRefusedAddress(err) {
			status, rec.Action = http.StatusForbidden, ActionDeny
		}
		rec.Status, rec.Error = status, err.Error()
		rec.Duration = time.Since(rec.Time)
		p.emit(rec)
		p.refuse(sess, status, nil, "agentvault: "+err.Error()+"\n")
		return
	}
	conn, brw, err := sess.Hijack()
	if err != nil {
		up.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	defer conn.Close()
	defer up.Close()
	if _, err := brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n"); err == nil {
		brw.Flush()
	}
	var toUp, toClient atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		n, _ := io.Copy(up, brw.Reader) // brw may hold bytes the client sent early
		toUp.Add(n)
		closeWrite(up)
	}()
	go func() {
		defer wg.Done()
		n, _ := io.Copy(conn, up)
		toClient.Add(n)
		closeWrite(conn)
		// The upstream is gone; a client that never closes its side must
		// not hold the tunnel open forever.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	}()
	wg.Wait()
	rec.Action, rec.Status = ActionTunnel, http.StatusOK
	rec.ReqBytes, rec.RespBytes = toUp.Load(), toClient.Load()
	rec.Duration = time.Since(rec.Time)
	p.emit(rec)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
