package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/agentvault/agentvault/internal/testsupport"
)

// newTestCA is a throwaway CA for the upstream servers and the session.
func newTestCA(t testing.TB, name string) *testsupport.CA {
	t.Helper()
	ca, err := testsupport.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issueLeaf is ca's server certificate for hosts.
func issueLeaf(t testing.TB, ca *testsupport.CA, hosts ...string) tls.Certificate {
	t.Helper()
	c, err := ca.Leaf(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seen is what an upstream received.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *seen) add(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
}

func (s *seen) all() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

// upstream starts an HTTPS server for the given names on 127.0.0.1.
func upstream(t testing.TB, ca *testsupport.CA, h http.Handler, hosts ...string) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r.Clone(r.Context()))
		h.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{issueLeaf(t, ca, hosts...)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, s
}

type harness struct {
	p       *Proxy
	addr    string
	session *testsupport.CA
	mu      sync.Mutex
	records []Record
}

func (h *harness) recs() []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Record(nil), h.records...)
}

// waitRecords waits (bounded) until n records arrived: a record is emitted
// when the client has finished reading, which can trail the client's return.
func (h *harness) waitRecords(t testing.TB, n int) []Record {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if r := h.recs(); len(r) >= n {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("want %d records, got %+v", n, h.recs())
	return nil
}

const testPassword = "pw-test-123"

func startProxy(t testing.TB, up *testsupport.CA, creds []*Credential, eg Egress, connectTo map[string]string, opts ...func(*Proxy)) *harness {
	t.Helper()
	h := &harness{session: newTestCA(t, "session")}
	h.p = &Proxy{
		Password:    testPassword,
		CA:          h.session.Cert,
		CAKey:       h.session.Key,
		Credentials: creds,
		Egress:      eg,
		RootCAs:     up.Pool,
		ConnectTo:   connectTo,
		Record: func(r Record) {
			h.mu.Lock()
			h.records = append(h.records, r)
			h.mu.Unlock()
		},
	}
	for _, o := range opts {
		o(h.p)
	}
	addr, err := h.p.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = addr.String()
	t.Cleanup(func() { h.p.Close() })
	return h
}

// client returns an HTTP client that uses the proxy with the given password
// and trusts the session CA (and the upstream CA, for tunnels).
func (h *harness) client(password string, extra *x509.CertPool) *http.Client {
	pool := h.session.Pool.Clone()
	if extra != nil {
		pool = extra.Clone()
		pool.AddCert(h.session.Cert)
	}
	pu := &url.URL{Scheme: "http", Host: h.addr}
	if password != "" {
		pu.User = url.UserPassword("agentvault", password)
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             http.ProxyURL(pu),
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			DisableKeepAlives: false,
		},
		Timeout: 10 * time.Second,
	}
}

func hostPortOf(srv *httptest.Server) string {
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return net.JoinHostPort("127.0.0.1", port)
}

func staticSecret(v string) func() string { return func() string { return v } }
