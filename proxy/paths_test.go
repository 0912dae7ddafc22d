package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPathViews(t *testing.T) {
	tests := []struct {
		in    string
		views []string // nil: no single meaning
	}{
		{"/v1/charges/ch_1", []string{"/v1/charges/ch_1", "/v1/charges/ch_1"}},
		{"/v1/public/../../admin", []string{"/admin", "/admin"}},
		{"/v1/public/%2e%2e/%2E%2E/admin", []string{"/admin", "/admin"}},
		{"/v1/public/.%2e/admin", []string{"/v1/admin", "/v1/admin"}},
		{"/v1/public//../admin", []string{"/v1/public/admin", "/v1/admin"}},
		{"/v1/ch%61rges", []string{"/v1/charges", "/v1/charges"}},
		{"/v1/./x/.", []string{"/v1/x/", "/v1/x/"}},
		{"/v1/public%2f..%2fadmin", nil},
		{"/v1/public%2F..%2Fadmin", nil},
		{"/v1/public/..%5cadmin", nil},
		{"/v1/public\\..\\admin", nil},
		{"/v1/public/..;/admin", nil},
		{"/v1/public;x=1", nil},
		{"/v1/public/%3b/x", nil},
		{"/v1/public/%252e%252e/admin", nil},
		{"/v1/public/%00", nil},
		{"/v1/bad%zz", nil},
		{"/v1/bad%2", nil},
		{"*", nil},
	}
	for _, tt := range tests {
		got, ok := pathViews(tt.in)
		if tt.views == nil {
			if ok {
				t.Errorf("%q: views %q, want no match", tt.in, got)
			}
			continue
		}
		if !ok || strings.Join(got, " ") != strings.Join(tt.views, " ") {
			t.Errorf("%q: views %q (ok=%v), want %q", tt.in, got, ok, tt.views)
		}
	}
}

// TestPathAndMethodRestrictions sends, through the proxy, the requests an
// agent would use to get a secret limited by paths:/methods: onto another
// endpoint. Only the requests that every reading of the path and method
// keeps inside the rule may carry it.
func TestPathAndMethodRestrictions(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}},
		Methods: []string{"GET"}, Paths: []string{"/v1/public/*"}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})

	tests := []struct {
		name, method, target, extra string
		want                        bool
	}{
		{"inside", "GET", "/v1/public/items", "", true},
		{"inside, harmless dot", "GET", "/v1/public/./items", "", true},
		{"dot-dot out", "GET", "/v1/public/../../admin", "", false},
		{"encoded dot-dot", "GET", "/v1/public/%2e%2e/%2e%2e/admin", "", false},
		{"encoded slash", "GET", "/v1/public/..%2f..%2fadmin", "", false},
		{"encoded backslash", "GET", "/v1/public/..%5c..%5cadmin", "", false},
		{"path parameter", "GET", "/v1/public/..;/..;/admin", "", false},
		{"double slash", "GET", "/v1/public//../admin", "", false},
		{"double encoding", "GET", "/v1/public/%252e%252e/admin", "", false},
		{"wrong method", "DELETE", "/v1/public/items", "", false},
		{"method override", "GET", "/v1/public/items", "X-HTTP-Method-Override: DELETE\r\n", false},
		{"method override 2", "GET", "/v1/public/items", "X-HTTP-Method: DELETE\r\n", false},
		{"method override 3", "GET", "/v1/public/items", "X-Method-Override: DELETE\r\n", false},
		{"form method", "GET", "/v1/public/items?_method=DELETE", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(got.all())
			res := rawMITMRequest(t, h, "api.example.test:443",
				fmt.Sprintf("%s %s HTTP/1.1\r\nHost: api.example.test\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n", tt.method, tt.target, tt.extra))
			io.Copy(io.Discard, res.Body)
			reqs := got.all()
			if len(reqs) != before+1 {
				t.Fatalf("upstream got %d requests, want 1 (status %d)", len(reqs)-before, res.StatusCode)
			}
			r := reqs[len(reqs)-1]
			carried := strings.Contains(r.Header.Get("Authorization"), secret)
			if carried != tt.want {
				t.Fatalf("secret carried=%v, want %v (upstream saw %s %s)", carried, tt.want, r.Method, r.RequestURI)
			}
		})
	}
}

// rawMITMRequest writes one request, byte for byte, inside a MITM'd CONNECT:
// Go's client would clean up the paths an attacker sends.
func rawMITMRequest(t *testing.T, h *harness, target, raw string) *http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", target, target, basicAuthValue("agentvault", testPassword))
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", res, err)
	}
	host, _, _ := net.SplitHostPort(target)
	tc := tls.Client(c, &tls.Config{ServerName: host, RootCAs: h.session.Pool})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tc, raw)
	res, err = http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}
