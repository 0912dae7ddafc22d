package proxy

import (
	"context"
	"errors"
	"net"
)

// Serve also serves the clients of l, a listener the proxy did not open (the
// one inside an isolated child's network namespace), exactly as those of
// Start's listener, until Close, which closes l too. Call it after Start.
//
// Its connections come from another network namespace, so their addresses
// may equal those of Start's listener; they are given addresses of their
// own (tagged), so that nothing keyed by a client's address can take one
// for the other, and the tag of a transparent listener's connection stays
// the only way to be treated as one (transparent.go).
func (p *Proxy) Serve(l net.Listener) error {
	if p.inner == nil {
		return errors.New("proxy: Serve before Start")
	}
	p.serveListener(l, func(c net.Conn) bool {
		return p.inner.offer(&otherNetConn{Conn: c, tag: "sandbox/"})
	})
	return nil
}

// serveListener accepts on l until Close (which closes l) and passes each
// connection to handle, which owns it; handle returns false when the proxy
// is closing.
func (p *Proxy) serveListener(l net.Listener, handle func(net.Conn) bool) {
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		<-p.inner.closed
		l.Close()
	}()
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by Close, or broken: Start's listener still serves
			}
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetKeepAlive(true)
			}
			if !handle(c) {
				c.Close()
				return
			}
		}
	}()
}

// closedContext is cancelled when the proxy closes, or by cancel.
func (p *Proxy) closedContext() (context.Context, context.CancelFunc) {
	return context.WithCancel(p.closing)
}

// otherNetConn is a client connection from another network namespace. Its
// tag keeps its address distinct from every address of the proxy's own
// namespace, and the sandbox's listeners from one another: Linux lets two
// connections share a source port when their destinations differ.
type otherNetConn struct {
	net.Conn
	tag string
}

func (c *otherNetConn) RemoteAddr() net.Addr { return otherNetAddr{c.Conn.RemoteAddr(), c.tag} }

// otherNetAddr keeps the network and address but never equals an address of
// the proxy's own namespace.
type otherNetAddr struct {
	net.Addr
	tag string
}

func (a otherNetAddr) String() string { return a.tag + a.Addr.String() }

// CloseWrite keeps a tunnel's half-close working (see connect.go).
func (c *otherNetConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
