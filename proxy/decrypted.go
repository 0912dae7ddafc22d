package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// The proxy serves the connections it decrypted (mitm.go) itself, one
// request after another on the goroutine that completed the handshake,
// instead of handing them to martian's connection loop. martian reads every
// request on a goroutine of its own and hands it over a channel, resets the
// connection deadline, draws two random IDs and registers a context in a
// global map under a mutex: on two cores the hand-off alone woke a second
// thread for most requests. Serving them here took sequential keep-alive
// requests from 0.38 to 0.47 of a direct connection's rate, 0.79 of a bare
// TLS relay's (scripts/bench; docs/development/martian.md). The hooks are the same for both loops
// (beginRequest, forward, relayUpgrade, refuse): only the reading of
// requests and the writing of responses differ.

// maxDrain is how much of a request body the proxy reads and discards, after
// answering, to keep the connection for the next request; a longer unread
// body closes the connection instead, as net/http's server does.
const maxDrain = 256 << 10

// idleTimeout is how long a decrypted connection may wait for its next
// request (or take to send its header) before the proxy closes it, as a
// server would: clients reconnect, and connections left open for good would
// hold the proxy's memory for the whole session.
const idleTimeout = 5 * time.Minute

// maxHeaderBytes bounds a request's line and header fields, as net/http's
// server does by default: without it a client could make the proxy buffer
// an endless header.
const maxHeaderBytes = 1 << 20

// errHeaderTooLarge ends a request whose header exceeds maxHeaderBytes.
var errHeaderTooLarge = errors.New("request header too large")

// headerLimit is the client connection as the connection's reader sees it:
// while n >= 0 (a request's header is being read) at most n more bytes.
type headerLimit struct {
	r io.Reader
	n int64
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// decryptedConn is one decrypted client connection; it is the clientConn of
// every request on it. Requests on it are matched against its CONNECT
// target alone and are authenticated by that CONNECT.
type decryptedConn struct {
	conn   net.Conn
	brw    *bufio.ReadWriter
	limit  *headerLimit // under brw's reader
	state  *tls.ConnectionState
	remote string
	target *target

	mu       sync.Mutex
	values   map[string]any
	hijacked bool
}

func (c *decryptedConn) Get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.values[key]
	return v, ok
}

func (c *decryptedConn) Set(key string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values[key] = v
}

func (c *decryptedConn) IsSecure() bool { return true }

// Hijack hands the connection to the caller, who must close it; the serving
// loop ends after the request in hand.
func (c *decryptedConn) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hijacked {
		return nil, nil, errors.New("proxy: connection already hijacked")
	}
	c.hijacked = true
	return c.conn, c.brw, nil
}

// serveDecrypted serves the requests of tc, whose handshake is complete,
// until the client or the proxy closes it. t is the CONNECT target.
func (p *Proxy) serveDecrypted(tc *tls.Conn, t *target) {
	defer tc.Close()
	stop := context.AfterFunc(p.closing, func() { tc.Close() })
	defer stop()
	cs := tc.ConnectionState()
	limit := &headerLimit{r: tc, n: -1}
	c := &decryptedConn{
		conn:   tc,
		brw:    bufio.NewReadWriter(bufio.NewReader(limit), bufio.NewWriter(tc)),
		limit:  limit,
		state:  &cs,
		remote: tc.RemoteAddr().String(),
		target: t,
		values: map[string]any{keyTarget: t, keyAuthed: true},
	}
	for p.serveNext(c) {
	}
}

// serveNext reads, forwards and answers one request, and reports whether the
// connection stays open for another.
func (p *Proxy) serveNext(c *decryptedConn) bool {
	// What the reader already holds counts against the limit too.
	c.limit.n = maxHeaderBytes - int64(c.brw.Reader.Buffered())
	c.conn.SetReadDeadline(time.Now().Add(p.idle))
	req, err := http.ReadRequest(c.brw.Reader)
	c.conn.SetReadDeadline(time.Time{})
	c.limit.n = -1
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false // idle, or too slow to say what it wants: closed as servers do
	case errors.Is(err, errHeaderTooLarge):
		p.refuseUnread(c, http.StatusRequestHeaderFieldsTooLarge, "request header over 1 MiB")
		return false
	case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF):
		// Not a request at all: say so instead of dropping the connection.
		p.refuseUnread(c, http.StatusBadRequest, "malformed request: "+err.Error())
		return false
	case err != nil:
		return false
	}
	body := req.Body
	req.TLS = c.state // shared by every request of the connection; nothing writes it
	req.URL.Scheme = "https"
	req.RemoteAddr = c.remote
	if req.URL.Host == "" {
		req.URL.Host = req.Host
	}
	if req.ProtoAtLeast(1, 1) && strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		// Answered at once, as before any rule: a refusal still reads (and
		// discards) the body below, so the connection stays usable.
		req.Header.Del("Expect")
		c.brw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if c.brw.Flush() != nil {
			return false
		}
	}
	ex := p.beginRequest(req, c) // nil when it answered and hijacked c
	if ex == nil {
		return false
	}
	res := p.forward(req, c, ex)
	if !p.writeDecrypted(c, req, res, ex) {
		return false
	}
	// The next request starts where this one's body ends. A body the
	// transport closed was read to its end by Close (net/http's request
	// bodies do that).
	if n, err := io.CopyN(io.Discard, body, maxDrain); err == nil && n == maxDrain {
		return false
	} else if err != nil && err != io.EOF && !errors.Is(err, http.ErrBodyReadAfterClose) {
		return false
	}
	body.Close()
	return true
}

// refuseUnread answers what could not be read as a request (so no rule
// could look at it) with a short response that ends the connection, and
// records it like any refusal; why is masked in both.
func (p *Proxy) refuseUnread(c *decryptedConn, status int, why string) {
	p.emit(Record{Time: time.Now(), Action: ActionDeny, Scheme: "https", Host: c.target.host, Port: c.target.port,
		Status: status, Warning: why})
	body := p.mask("agentvault: " + why + "\n")
	fmt.Fprintf(c.brw, "HTTP/1.1 %03d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
	c.brw.Flush()
}

// writeDecrypted writes res to the client, streaming what must arrive as it
// comes (event streams, bodies of unknown length) chunked on the same
// connection, and reports whether the connection stays open.
func (p *Proxy) writeDecrypted(c *decryptedConn, req *http.Request, res *http.Response, ex *exchange) bool {
	res.Request = req
	// The reason phrase is upstream text the guards do not scan; a bound
	// upstream could reflect a secret there. The standard text replaces it.
	res.Status = ""
	if res.StatusCode == http.StatusSwitchingProtocols {
		p.relayUpgrade(c, res, ex)
		return false
	}
	// Response.Write closes the body (which emits the record and frees the
	// upstream connection) except when the status line or header cannot be
	// written; then this does.
	defer res.Body.Close()
	keep := !req.Close && !res.Close && p.closing.Err() == nil
	w := c.brw.Writer
	if needsStreaming(req, res) {
		if !req.ProtoAtLeast(1, 1) {
			// HTTP/1.0 has no chunking: the body ends where the connection does.
			writeStreaming(w, res, req)
			return false
		}
		res.Header.Del("Content-Length")
		res.ContentLength = -1
		res.TransferEncoding = []string{"chunked"}
		res.Body = &flushingBody{body: res.Body, w: w}
	}
	res.Close = !keep
	err := res.Write(w) // closes the body, which emits the exchange's record
	if err != nil || w.Flush() != nil {
		return false
	}
	return keep
}
