package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestUpstreamConnectionsKept: the upstream connection outlives the client's.
// A client that opens a new connection (and says "Connection: close") for
// every request must not cost a new upstream TLS handshake each time, with
// or without a body; nor must a kept-alive client.
func TestUpstreamConnectionsKept(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keepAlive bool
		method    string
		body      string
	}{
		{"GET, kept-alive client", true, "GET", ""},
		{"GET, new client connection each", false, "GET", ""},
		{"HEAD, new client connection each", false, "HEAD", ""},
		{"POST, new client connection each", false, "POST", "a body"},
		{"POST, kept-alive client", true, "POST", "a body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newTestCA(t, "upstream")
			var conns atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if r.Header.Get("Authorization") != "Bearer "+secret {
					w.WriteHeader(http.StatusUnauthorized)
				}
				io.WriteString(w, "got "+string(b))
			}))
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{issueLeaf(t, up, "api.example.test")}}
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
			h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
			c := h.client(testPassword, nil)
			c.Transport.(*http.Transport).DisableKeepAlives = !tc.keepAlive
			for i := 0; i < 5; i++ {
				req, _ := http.NewRequest(tc.method, "https://api.example.test/x", strings.NewReader(tc.body))
				res, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				want := "got " + tc.body
				if tc.method == "HEAD" {
					want = ""
				}
				if res.StatusCode != 200 || string(b) != want {
					t.Fatalf("request %d: %d %q, want 200 %q", i, res.StatusCode, b, want)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Fatalf("%d upstream connections for 5 requests, want 1", n)
			}
		})
	}
}

// TestPoolConnectionEdges: what the pool must get right when it reuses a
// connection: a HEAD's Content-Length announces no body, an upstream that
// closed a kept-alive connection costs a retry, not an error, and
// "Connection: close" from the upstream is obeyed.
func TestPoolConnectionEdges(t *testing.T) {
	const body = "0123456789abcdef"
	var closing atomic.Bool
	up := newTestCA(t, "upstream")
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if closing.Load() {
			w.Header().Set("Connection", "close")
		}
		w.Header().Set("Content-Length", "16")
		if r.Method != "HEAD" {
			io.WriteString(w, body)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{issueLeaf(t, up, "api.example.test")}}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	h := startProxy(t, up, []*Credential{{Name: "api", Hosts: []string{"api.example.test"}, Secret: staticSecret(secret)}},
		Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	c := h.client(testPassword, nil)
	get := func(method string) string {
		t.Helper()
		req, _ := http.NewRequest(method, "https://api.example.test/", nil)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", method, res.StatusCode)
		}
		return string(b)
	}
	for _, m := range []string{"HEAD", "GET", "HEAD", "OPTIONS", "GET"} {
		want := body
		if m == "HEAD" {
			want = ""
		}
		if got := get(m); got != want {
			t.Fatalf("%s: body %q, want %q", m, got, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections, want 1", n)
	}
	// The upstream drops its idle connections: the next request retries on
	// a new one.
	srv.CloseClientConnections()
	if got := get("GET"); got != body {
		t.Fatalf("after the upstream closed: %q", got)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d upstream connections after a close, want 2", n)
	}
	closing.Store(true)
	for i := 0; i < 3; i++ {
		if got := get("GET"); got != body {
			t.Fatalf("with Connection: close: %q", got)
		}
	}
	if n := conns.Load(); n != 4 {
		t.Fatalf("%d upstream connections, want 4: one more for each request after Connection: close", n)
	}
}
