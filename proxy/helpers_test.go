package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// testCA is a throwaway CA for the upstream servers and the session.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) leaf(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		DNSNames:     hosts,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
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
func upstream(t testing.TB, ca *testCA, h http.Handler, hosts ...string) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r.Clone(r.Context()))
		h.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, hosts...)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, s
}

type harness struct {
	p       *Proxy
	addr    string
	session *testCA
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

func startProxy(t testing.TB, up *testCA, creds []*Credential, eg Egress, connectTo map[string]string, opts ...func(*Proxy)) *harness {
	t.Helper()
	h := &harness{session: newTestCA(t, "session")}
	h.p = &Proxy{
		Password:    testPassword,
		CA:          h.session.cert,
		CAKey:       h.session.key,
		Credentials: creds,
		Egress:      eg,
		RootCAs:     up.pool,
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
	pool := h.session.pool.Clone()
	if extra != nil {
		pool = extra.Clone()
		pool.AddCert(h.session.cert)
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
