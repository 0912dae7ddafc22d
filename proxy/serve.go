package proxy

import (
	"errors"
	"net"
)

// Serve also serves the clients of l, a listener the proxy did not open (the
// one inside an isolated child's network namespace), exactly as those of
// Start's listener, until Close, which closes l too. Call it after Start.
//
// Its connections come from another network namespace, so their addresses
// may equal those of Start's listener; they are given addresses of their
// own, since a decrypted connection's CONNECT target is found by its client
// address (see mitmTarget).
func (p *Proxy) Serve(l net.Listener) error {
	if p.inner == nil {
		return errors.New("proxy: Serve before Start")
	}
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
			if !p.inner.offer(&otherNetConn{Conn: c}) {
				c.Close()
				return
			}
		}
	}()
	return nil
}

// otherNetConn is a client connection from another network namespace.
type otherNetConn struct{ net.Conn }

func (c *otherNetConn) RemoteAddr() net.Addr { return otherNetAddr{c.Conn.RemoteAddr()} }

// otherNetAddr keeps the network and address but never equals an address of
// the proxy's own namespace.
type otherNetAddr struct{ net.Addr }

func (a otherNetAddr) String() string { return "sandbox/" + a.Addr.String() }

// CloseWrite keeps a tunnel's half-close working (see connect.go).
func (c *otherNetConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
