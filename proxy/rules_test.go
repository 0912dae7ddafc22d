package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSNIMustMatchConnectTarget: a client that CONNECTs to a credentialed
// host but names another in its TLS ClientHello gets nothing.
func TestSNIMustMatchConnectTarget(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\nProxy-Authorization: "+basicAuthValue("agentvault", testPassword)+"\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", res, err)
	}
	// The session CA is constrained to api.example.test, so the client must
	// skip verification to get this far at all: a hostile agent would.
	tc := tls.Client(c, &tls.Config{ServerName: "evil.example.test", InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
	res, err = http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusMisdirectedRequest || len(got.all()) != 0 {
		t.Fatalf("status %d, upstream got %d requests", res.StatusCode, len(got.all()))
	}
}

func TestHopByHopHeadersStripped(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "drop me")
		w.Header().Set("Keep-Alive", "timeout=5")
		io.WriteString(w, "ok")
	}), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	req, _ := http.NewRequest("GET", "https://api.example.test/", nil)
	req.Header.Set("Connection", "X-Req-Hop")
	req.Header.Set("X-Req-Hop", "secret routing data")
	req.Header.Set("Proxy-Connection", "keep-alive")
	res, err := h.client(testPassword, nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	r := got.all()[0]
	for _, k := range []string{"X-Req-Hop", "Proxy-Connection", "Proxy-Authorization"} {
		if r.Header.Get(k) != "" {
			t.Errorf("upstream got %s", k)
		}
	}
	for _, k := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if res.Header.Get(k) != "" {
			t.Errorf("client got %s", k)
		}
	}
}

func TestSecretWithLineBreakRefused(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret("abc\r\nX-Injected: 1")}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	res, err := h.client(testPassword, nil).Get("https://api.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "line break") || len(got.all()) != 0 {
		t.Fatalf("status %d body %q upstream %d", res.StatusCode, body, len(got.all()))
	}
	if strings.Contains(string(body), "abc") {
		t.Fatal("error body carries the secret")
	}
}
