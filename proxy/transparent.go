package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Transparent mode: inside an isolated sandbox every name resolves to
// loopback, so a client that ignores the proxy variables connects to the
// sandbox's 127.0.0.1:443 or :80. Those listeners are served here under the
// same rules as the proxy port:
//   - a TLS connection on :443 is an authenticated CONNECT to SNI:443: the
//     leak guard checks the name, the egress rules decide, a credentialed
//     host (or any host under inspect: all) is decrypted and served by the
//     proxy's own loop (decrypted.go), any other is tunnelled to the real
//     host dialled by name;
//   - a connection on :80 is served by martian as authenticated plain HTTP
//     routed by its Host header, which never gets a secret.
// Only processes inside the sandbox reach these listeners, and they hold the
// session password anyway, so treating them as authenticated gives them
// nothing new; it only spares them the proxy settings they ignore.

// Address tags of transparent connections. martian copies a connection's
// address into req.RemoteAddr, and no TCP address starts with a letter, so
// only these connections carry them.
const (
	tagTransparentTLS  = "transparent-tls/"
	tagTransparentHTTP = "transparent-http/"
)

// isTransparentHTTP reports whether req arrived on a sandbox's port 80.
func isTransparentHTTP(req *http.Request) bool {
	return strings.HasPrefix(req.RemoteAddr, tagTransparentHTTP)
}

// transparentPort is the port a transparent TLS connection stands for.
const transparentPort = 443

// errPeeked ends the handshake that only reads the client's server name.
var errPeeked = errors.New("server name read")

// ServeTransparent serves a sandbox's transparent listeners (see above):
// tlsLn for TLS on port 443, httpLn for plain HTTP on port 80; either may be
// nil. Call it after Start; Close closes both.
func (p *Proxy) ServeTransparent(tlsLn, httpLn net.Listener) error {
	if p.inner == nil {
		return errors.New("proxy: ServeTransparent before Start")
	}
	if tlsLn != nil {
		p.serveListener(tlsLn, func(c net.Conn) bool {
			go p.serveTransparentTLS(&otherNetConn{Conn: c, tag: tagTransparentTLS})
			return true
		})
	}
	if httpLn != nil {
		p.serveListener(httpLn, func(c net.Conn) bool {
			return p.inner.offer(&otherNetConn{Conn: c, tag: tagTransparentHTTP})
		})
	}
	return nil
}

// serveTransparentTLS reads the client's server name and handles the
// connection as an authenticated CONNECT to it.
func (p *Proxy) serveTransparentTLS(c net.Conn) {
	defer c.Close()
	closed, cancel := p.closedContext()
	defer cancel()
	context.AfterFunc(closed, func() { c.Close() })
	rec := Record{Time: time.Now(), Method: http.MethodConnect, Scheme: "https", Port: transparentPort}
	c.SetDeadline(rec.Time.Add(handshakeTimeout))
	name, hello, err := readServerName(c)
	host, _, ok := splitTarget(net.JoinHostPort(name, "443"), transparentPort)
	switch {
	case len(hello) == 0:
		// Closed before saying anything (a probe, a client's second
		// connection attempt): no request, nothing to record.
		return
	case err != nil && !errors.Is(err, errPeeked):
		rec.Action, rec.Error = ActionError, "transparent TLS: reading the client's hello: "+err.Error()
	case name == "" || !ok:
		// Without a name there is nothing to apply the rules to; an IP
		// address never reaches here (every name resolves to loopback).
		rec.Action, rec.Status, rec.Warning = ActionDeny, http.StatusBadRequest, "transparent TLS without a valid server name"
	}
	if rec.Action != "" {
		p.emit(rec)
		return
	}
	c.SetDeadline(time.Time{})
	rec.Host = host
	a := p.admit(host, transparentPort, &rec)
	if a.status != 0 {
		// Nothing to tell a TLS client in plain text: the record says why.
		p.emit(rec)
		return
	}
	raw := &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(hello), c)}
	if a.mitm {
		p.decrypt(raw, &target{host: host, port: transparentPort, warning: rec.Warning}, rec)
		return
	}
	p.relay(raw, hello, rec)
}

// readServerName reads the client's ClientHello and returns its server name
// and every byte read, to be replayed. Nothing is written to the client.
func readServerName(c net.Conn) (string, []byte, error) {
	rc := &recordingConn{Conn: c}
	var name string
	err := tls.Server(rc, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			name = h.ServerName
			return nil, errPeeked
		},
	}).Handshake()
	return name, rc.buf.Bytes(), err
}

// recordingConn keeps what is read and swallows what is written (the alert
// the aborted handshake sends).
type recordingConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.buf.Write(b[:n])
	return n, err
}

func (c *recordingConn) Write(b []byte) (int, error) { return len(b), nil }

// relay tunnels a transparent TLS connection to the real rec.Host:443,
// replaying the ClientHello read from raw first (raw's reader holds it).
func (p *Proxy) relay(raw *replayConn, hello []byte, rec Record) {
	closed, cancel := p.closedContext()
	defer cancel()
	ctx, cancelDial := context.WithTimeout(closed, 30*time.Second)
	up, err := p.dial.dialTunnel(ctx, rec.Host, rec.Port)
	cancelDial()
	if err != nil {
		rec.Action = ActionError
		rec.Status = http.StatusBadGateway
		if isRefusedAddress(err) {
			rec.Action, rec.Status = ActionDeny, http.StatusForbidden
		}
		rec.Error, rec.Duration = err.Error(), time.Since(rec.Time)
		p.emit(rec)
		return
	}
	defer up.Close()
	var toUp, toClient atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		n, _ := io.Copy(up, raw.r)
		toUp.Add(n)
		closeWrite(up)
	}()
	go func() {
		defer wg.Done()
		n, _ := io.Copy(raw.Conn, up)
		toClient.Add(n)
		closeWrite(raw.Conn)
		// The upstream is gone; a client that never closes its side must
		// not hold the tunnel open forever.
		raw.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	}()
	wg.Wait()
	rec.Action, rec.Status = ActionTunnel, http.StatusOK
	rec.ReqBytes, rec.RespBytes = toUp.Load(), toClient.Load()
	rec.Duration = time.Since(rec.Time)
	p.emit(rec)
}
