// Package proxy is agentvault's credential-injecting HTTPS proxy. It wraps
// github.com/google/martian/v3 and keeps every one of martian's quirks inside
// this package: callers see one Proxy type with hook fields, in the manner of
// net/http/httputil.ReverseProxy.
//
// Invariants, whatever the configuration:
//   - every CONNECT and every plain request must carry the session password,
//     else the client gets a 407 and nothing reaches an upstream (connections
//     on a sandbox's transparent listeners stand for authenticated ones, see
//     ServeTransparent);
//     Proxy-Authorization is never forwarded;
//   - a secret is only put on a request that arrived over TLS inside a CONNECT
//     whose target host and port are bound to that secret; the Host header and
//     SNI must name that same target;
//   - plain-HTTP requests never get a secret, and a credentialed host over plain
//     HTTP is refused;
//   - upstream TLS is always verified;
//   - every request and every refusal produces exactly one Record.
package proxy

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/martian/v3"
	mlog "github.com/google/martian/v3/log"

	"github.com/agentvault/agentvault/redact"
	"github.com/agentvault/agentvault/vocab"
)

// Proxy is one session's proxy. Set the fields, then call Start once.
type Proxy struct {
	// Password is the session password clients must send as
	// "Proxy-Authorization: Basic base64(agentvault:<Password>)".
	Password string
	// CA and CAKey sign the leaf certificates of MITM'd hosts. The key is
	// used in memory only.
	CA    *x509.Certificate
	CAKey crypto.Signer
	// Credentials and Egress are the session's rules.
	Credentials []*Credential
	Egress      Egress
	// Guard says what to do with secrets seen where they do not belong.
	Guard Guard
	// RootCAs verifies upstream TLS (system roots plus --upstream-ca).
	RootCAs *x509.CertPool
	// ConnectTo maps "host:port" to the "addr:port" to dial instead (see ParseConnectTo).
	ConnectTo map[string]string
	// UpstreamProxy, when set, picks the invoking environment's proxy for an
	// upstream request (http.ProxyFromEnvironment in production).
	UpstreamProxy func(*http.Request) (*url.URL, error)
	// Refresh, when set, resolves a credential again after an upstream
	// answered 401 or 403 to a request that carried it, and reports whether
	// its value changed; the request is then replayed once if it can be.
	// Secret must return the new value afterwards.
	Refresh func(ctx context.Context, credential string) (changed bool, err error)
	// Record receives one Record per request or refusal. It is called from
	// many goroutines and must not block for long.
	Record func(Record)
	// Redactor masks secrets and placeholders in everything the proxy writes
	// (records, refusal bodies). Start creates one when it is nil; either
	// way the proxy adds every value it sees, including rotated values and
	// the keys inside an AWS credential, so the caller can share it with its
	// own output.
	Redactor *redact.Redactor
	// TokenBrokers are brokered subscription logins (tokenbroker.go).
	TokenBrokers []*TokenBroker

	policy    *policy
	dial      *dialer
	transport *http.Transport
	pool      *connPool
	mp        *martian.Proxy
	ln        net.Listener
	wg        sync.WaitGroup
	closeOnce sync.Once
	authValue string
	leaves    leafCache
	matchers  matcherCache
	inner     *innerListener
	// closing is cancelled by Close: connections the proxy serves itself
	// (decrypted.go) end with it.
	closing     context.Context
	stopServing context.CancelFunc
	idle        time.Duration // idleTimeout; shorter in tests
}

var silenceMartian sync.Once

// Start validates the rules, listens on addr (loopback only) and serves in the
// background. The returned address is where clients connect.
func (p *Proxy) Start(addr string) (net.Addr, error) {
	if p.Password == "" {
		return nil, errors.New("proxy: empty session password")
	}
	if p.CA == nil || p.CAKey == nil {
		return nil, errors.New("proxy: no session CA")
	}
	if err := CheckListenAddr(addr); err != nil {
		return nil, err
	}
	if err := p.Guard.validate(); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if p.Redactor == nil {
		p.Redactor = &redact.Redactor{}
	}
	pol, err := compilePolicy(p.Credentials, p.Egress, p.Redactor)
	if err != nil {
		return nil, err
	}
	p.policy = pol
	p.authValue = basicAuthValue(vocab.ProxyUser, p.Password)
	p.dial = &dialer{
		connectTo: map[string]string{},
		explicit:  map[string]bool{},
		upstream:  p.UpstreamProxy,
		net:       net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
	}
	for from, to := range p.ConnectTo {
		h, port, ok := splitTarget(from, 443)
		if !ok {
			return nil, fmt.Errorf("proxy: bad --connect-to source %q", from)
		}
		p.dial.connectTo[joinHostPort(h, port)] = to
	}
	for _, a := range p.Egress.Allow {
		if !strings.HasPrefix(a, "*.") {
			h, _, ok := splitTarget(a, 0)
			if ok {
				p.dial.explicit[h] = true
			}
		}
	}
	pool := p.RootCAs
	if pool == nil {
		if pool, err = x509.SystemCertPool(); err != nil {
			pool = x509.NewCertPool()
		}
	}
	p.transport = p.dial.newTransport(pool)
	p.pool = newConnPool(p.dial, p.transport.TLSClientConfig)
	for _, c := range pol.creds {
		p.Redactor.AddPlaceholder(c.Name, c.Placeholder)
		c.values() // notes the current value with the redactor
	}

	silenceMartian.Do(func() { mlog.SetLevel(mlog.Silent) })

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen %s: %w", addr, err)
	}
	p.ln = ln

	mp := martian.NewProxy()
	// martian sets an absolute deadline before each request; a long SSE
	// stream or upload must not be cut by it, so the ceiling is the CA's life.
	mp.SetTimeout(24 * time.Hour)
	mp.SetRoundTripper(roundTripperFunc(p.roundTrip))
	mp.SetRequestModifier(modifier{p})
	mp.SetResponseModifier(modifier{p})
	p.mp = mp
	p.closing, p.stopServing = context.WithCancel(context.Background())
	if p.idle == 0 {
		p.idle = idleTimeout
	}
	// Clients connect to ln; inner hands martian the connections of other
	// listeners (serve.go, transparent.go). The TLS connections the proxy
	// decrypts never reach martian (decrypted.go).
	p.inner = newInnerListener(ln.Addr())
	for _, l := range []net.Listener{ln, p.inner} {
		p.wg.Add(1)
		go func(l net.Listener) {
			defer p.wg.Done()
			// Serve ends when Close closes l; nothing else stops it.
			mp.Serve(l)
		}(l)
	}
	return ln.Addr(), nil
}

// CheckListenAddr refuses anything but a loopback listen address, so the proxy
// can never be reached from another host.
func CheckListenAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: only a loopback address is allowed", addr)
	}
	return nil
}

// Close stops accepting connections and gives open ones a moment to end.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		if p.ln != nil {
			p.ln.Close()
		}
		if p.inner != nil {
			p.inner.Close()
		}
		if p.stopServing != nil {
			p.stopServing()
		}
		if p.mp != nil {
			done := make(chan struct{})
			go func() { p.wg.Wait(); p.mp.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
			}
		}
		if p.transport != nil {
			p.transport.CloseIdleConnections()
		}
		if p.pool != nil {
			p.pool.close()
		}
	})
	return nil
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// modifier adapts the proxy to martian's modifier interfaces.
type modifier struct{ p *Proxy }

func (m modifier) ModifyRequest(req *http.Request) error   { m.p.onRequest(req); return nil }
func (m modifier) ModifyResponse(res *http.Response) error { m.p.onResponse(res); return nil }

// emit masks what must never be recorded and hands the record on.
func (p *Proxy) emit(r Record) {
	if p.Record == nil {
		return
	}
	// The agent chooses the method as freely as the path.
	r.Method, r.Path, r.Host = p.mask(r.Method), p.mask(r.Path), p.mask(r.Host)
	r.Warning, r.Error = p.mask(r.Warning), p.mask(r.Error)
	p.Record(r)
}

// mask replaces every secret value and placeholder in s, in any of their
// encodings, with the name of its credential. Everything the proxy writes
// (records, refusal bodies) passes through it, whatever upstream or error
// text ends up there.
func (p *Proxy) mask(s string) string { return p.Redactor.String(s) }

var _ io.Closer = (*Proxy)(nil)

func ctxOf(req *http.Request) *martian.Context {
	return martian.NewContext(req)
}
