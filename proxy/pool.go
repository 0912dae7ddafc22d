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
	"sync"
	"sync/atomic"
	"time"
)

// connPool sends the common request, a GET, HEAD or OPTIONS without a body
// to an HTTPS upstream reached without an upstream proxy, on a kept-alive
// connection, writing the request and reading the response on the caller's
// goroutine. http.Transport runs two goroutines per connection and hands
// every request and response between them and the caller: on two cores the
// thread wake-ups of those hand-offs cost more than the request itself.
// Everything else (bodies, upgrades, upstream proxies, plain HTTP) goes
// through the proxy's http.Transport, which can write a body while the
// upstream already answers.
//
// The rules are the transport's: the same dialer (--connect-to, refused
// addresses), upstream TLS verified against the same roots with the target
// host as server name, HTTP/1.1 only, a connection reused only after its
// response body was read to the end, idempotent requests retried once when a
// reused connection turns out to be closed.
type connPool struct {
	dial    *dialer
	tls     *tls.Config
	mu      sync.Mutex
	idle    map[string][]*poolConn // "host:port" -> most recently used last
	nIdle   int
	closed  bool
	maxIdle int // in all
	maxHost int // per host
	timeout time.Duration
}

// poolConn is one upstream connection.
type poolConn struct {
	key    string
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool
}

const poolBufSize = 32 << 10

func newConnPool(d *dialer, cfg *tls.Config) *connPool {
	return &connPool{dial: d, tls: cfg, idle: map[string][]*poolConn{}, maxIdle: 64, maxHost: 16, timeout: 90 * time.Second}
}

// usable reports whether req may take the synchronous path.
func (cp *connPool) usable(req *http.Request, host string, port int) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	if req.URL.Scheme != "https" || (req.Body != nil && req.Body != http.NoBody) || req.ContentLength > 0 ||
		len(req.TransferEncoding) > 0 || req.Header.Get("Upgrade") != "" || req.Header.Get("Expect") != "" {
		return false
	}
	return cp.dial.upstreamProxyFor(host, port) == nil
}

// roundTrip sends req to host:port and returns the response. The response
// body hands the connection back to the pool at its end.
func (cp *connPool) roundTrip(req *http.Request, host string, port int) (*http.Response, error) {
	key := joinHostPort(host, port)
	for attempt := 0; ; attempt++ {
		pc, err := cp.get(req.Context(), key, host, port)
		if err != nil {
			return nil, err
		}
		res, err := cp.send(pc, req)
		if err == nil {
			return res, nil
		}
		pc.conn.Close()
		// A kept-alive connection the upstream closed while it sat idle
		// fails at once; the request never reached a handler, and every
		// method on this path is idempotent. Each retry takes another
		// connection, a fresh one at the latest after maxHost.
		if !pc.reused || attempt > cp.maxHost || !errors.Is(err, errStaleConn) {
			return nil, err
		}
	}
}

// errStaleConn marks a reused connection that ended before any response.
var errStaleConn = errors.New("upstream closed a kept-alive connection")

func (cp *connPool) send(pc *poolConn, req *http.Request) (*http.Response, error) {
	err := req.Write(pc.bw)
	if err == nil {
		err = pc.bw.Flush()
	}
	if err != nil {
		if pc.reused {
			err = fmt.Errorf("%w: %v", errStaleConn, err)
		}
		return nil, err
	}
	for informational := 0; ; informational++ {
		if _, err := pc.br.Peek(1); err != nil {
			if pc.reused && informational == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF || isConnReset(err)) {
				return nil, fmt.Errorf("%w: %v", errStaleConn, err)
			}
			return nil, err
		}
		res, err := http.ReadResponse(pc.br, req)
		if err != nil {
			return nil, err
		}
		// 1xx answers (103 Early Hints) precede the real one; nothing
		// on this path asked for 100 or 101.
		if res.StatusCode >= 100 && res.StatusCode < 200 {
			if res.StatusCode == http.StatusSwitchingProtocols || informational >= 5 {
				return nil, fmt.Errorf("unexpected %d from the upstream", res.StatusCode)
			}
			continue
		}
		reuse := !res.Close && !req.Close && res.ProtoAtLeast(1, 1)
		if res.Body == nil || res.Body == http.NoBody || req.Method == http.MethodHead {
			if reuse {
				cp.put(pc)
			} else {
				pc.conn.Close()
			}
			return res, nil
		}
		res.Body = &poolBody{rc: res.Body, pc: pc, cp: cp, reuse: reuse}
		return res, nil
	}
}

func isConnReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// get returns an idle connection to key, or dials one.
func (cp *connPool) get(ctx context.Context, key, host string, port int) (*poolConn, error) {
	now := time.Now()
	cp.mu.Lock()
	for l := cp.idle[key]; len(l) > 0; l = cp.idle[key] {
		pc := l[len(l)-1]
		cp.idle[key] = l[:len(l)-1]
		cp.nIdle--
		if now.Sub(pc.idleAt) < cp.timeout {
			cp.mu.Unlock()
			pc.reused = true
			return pc, nil
		}
		pc.conn.Close()
	}
	if len(cp.idle[key]) == 0 {
		delete(cp.idle, key)
	}
	cp.mu.Unlock()
	return cp.dialConn(ctx, key, host, port)
}

func (cp *connPool) dialConn(ctx context.Context, key, host string, port int) (*poolConn, error) {
	raw, err := cp.dial.dialTarget(ctx, host, port)
	if err != nil {
		return nil, err
	}
	cfg := cp.tls.Clone()
	cfg.ServerName = host
	tc := tls.Client(raw, cfg)
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	return &poolConn{key: key, conn: tc, br: bufio.NewReaderSize(tc, poolBufSize), bw: bufio.NewWriterSize(tc, 4<<10)}, nil
}

// put keeps pc for the next request to its host, or closes it.
func (cp *connPool) put(pc *poolConn) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.closed || cp.nIdle >= cp.maxIdle || len(cp.idle[pc.key]) >= cp.maxHost || pc.br.Buffered() > 0 {
		pc.conn.Close()
		return
	}
	pc.idleAt = time.Now()
	cp.idle[pc.key] = append(cp.idle[pc.key], pc)
	cp.nIdle++
}

// close closes every idle connection; connections in use close at their end.
func (cp *connPool) close() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.closed = true
	for k, l := range cp.idle {
		for _, pc := range l {
			pc.conn.Close()
		}
		delete(cp.idle, k)
	}
	cp.nIdle = 0
}

// poolBody is a response body; read to its end, it returns the connection
// to the pool. Closed earlier, it closes the connection: what is left of
// the body could be anything.
type poolBody struct {
	rc    io.ReadCloser
	pc    *poolConn
	cp    *connPool
	reuse bool
	done  atomic.Bool
}

func (b *poolBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
	}
	return n, err
}

// Close does not close rc: net/http's body would read the rest to its end.
func (b *poolBody) Close() error {
	b.finish(false)
	return nil
}

func (b *poolBody) finish(eof bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	if eof && b.reuse {
		b.cp.put(b.pc)
		return
	}
	b.pc.conn.Close()
}
