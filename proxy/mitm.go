package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"

	"github.com/agentvault/agentvault/ca"
)

// The proxy terminates the client's TLS itself and hands the decrypted
// connection to martian through an in-memory listener, instead of letting
// martian MITM: martian's MITM makes an RSA-2048 key at start-up (tens of
// milliseconds) and signs every handshake with it, issues leaves for
// whatever name the client sends, and answers CONNECT with a
// "200 OK" that carries Content-Length. Here leaves are ECDSA P-256 from the
// session CA, one per CONNECT target, and martian still parses and runs
// every request inside (it marks a *tls.Conn secure and sets req.TLS).

// maxLeaves bounds the leaf cache: a session meets a handful of hosts, and
// only credentialed (or, with inspect: all, allowed) hosts get a leaf.
const maxLeaves = 4096

// handshakeTimeout bounds a client's TLS handshake with the proxy.
const handshakeTimeout = 15 * time.Second

// leafCache issues and keeps one leaf per host.
type leafCache struct {
	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

func (p *Proxy) leafFor(host string) (*tls.Certificate, error) {
	c := &p.leaves
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.leaves[host]; ok && time.Until(l.Leaf.NotAfter) > time.Minute {
		return l, nil
	}
	l, err := ca.IssueLeaf(p.CA, p.CAKey, host, time.Until(p.CA.NotAfter))
	if err != nil {
		return nil, err
	}
	if c.leaves == nil || len(c.leaves) >= maxLeaves {
		c.leaves = map[string]*tls.Certificate{}
	}
	c.leaves[host] = l
	return l, nil
}

// innerListener is where decrypted client connections wait for martian.
type innerListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr
}

func newInnerListener(addr net.Addr) *innerListener {
	return &innerListener{conns: make(chan net.Conn), closed: make(chan struct{}), addr: addr}
}

func (l *innerListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *innerListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *innerListener) Addr() net.Addr { return l.addr }

// offer hands c to martian; false if the proxy is closing.
func (l *innerListener) offer(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

// mitm answers a CONNECT to t, terminates the client's TLS with a leaf for
// t.host, and serves the connection through martian until it ends. Requests
// on it are matched against t alone (see onRequest and prepareTLS).
func (p *Proxy) mitm(sess clientConn, t *target, rec Record) {
	conn, brw, err := sess.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{})
	if _, err := brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n"); err != nil || brw.Flush() != nil {
		return
	}
	// What the client sent after the CONNECT (its ClientHello, often) may
	// already sit in martian's reader; take it, and read the rest from the
	// connection itself, so martian's reader is never used again by two
	// goroutines (martian's loop reads it once more after this returns).
	early, _ := brw.Reader.Peek(brw.Reader.Buffered())
	raw := &replayConn{Conn: conn, r: io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn)}
	brw.Reader.Discard(len(early))
	p.decrypt(raw, t, rec)
}

// decrypt terminates the client's TLS on raw with a leaf for t.host and
// serves the connection through martian until it ends.
func (p *Proxy) decrypt(raw net.Conn, t *target, rec Record) {
	tc := tls.Server(raw, &tls.Config{
		MinVersion: tls.VersionTLS12,
		// martian relays HTTP/1.1 only (its h2 path skips the modifiers).
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			// Always the CONNECT target's leaf, whatever name the client
			// asks for: a different SNI is refused at the first request.
			return p.leafFor(t.host)
		},
	})
	tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		// A client that refuses the session CA (no trust bundle, or a
		// certificate-pinning SDK) fails here, before any request: say so
		// in the audit instead of dropping the connection silently.
		rec.Time, rec.Action, rec.Error = time.Now(), ActionError,
			"TLS handshake with the client failed (does it trust the session CA?): "+err.Error()
		p.emit(rec)
		return
	}
	tc.SetDeadline(time.Time{})
	p.serveDecrypted(tc, t)
}

// replayConn reads what the client sent after the CONNECT from r (the bytes
// already read, then the connection).
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }
