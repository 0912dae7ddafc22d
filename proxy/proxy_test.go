package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const secret = "real-secret-value-42"

func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "ok %s %s", r.Method, r.URL.Path)
	})
}

func TestInjectionThroughMITM(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	tests := []struct {
		name    string
		inject  []Injection
		send    func(r *http.Request)
		path    string
		check   func(t *testing.T, r *http.Request)
		action  Action
		methods []string
		paths   []string
	}{
		{name: "bearer", inject: []Injection{{Type: "bearer"}}, path: "/v1/x",
			check: func(t *testing.T, r *http.Request) {
				if g := r.Header.Get("Authorization"); g != "Bearer "+secret {
					t.Errorf("Authorization = %q", g)
				}
			}, action: ActionInject},
		{name: "bearer wins over agent header", inject: []Injection{{Type: "bearer"}}, path: "/",
			send: func(r *http.Request) { r.Header.Set("Authorization", "Bearer agent-chose-this") },
			check: func(t *testing.T, r *http.Request) {
				if g := r.Header.Values("Authorization"); len(g) != 1 || g[0] != "Bearer "+secret {
					t.Errorf("Authorization = %q", g)
				}
			}, action: ActionInject},
		{name: "placeholder in header", path: "/v1/messages",
			send: func(r *http.Request) { r.Header.Set("X-Api-Key", "PLACEHOLDER-abc") },
			check: func(t *testing.T, r *http.Request) {
				if g := r.Header.Get("X-Api-Key"); g != secret {
					t.Errorf("x-api-key = %q", g)
				}
			}, action: ActionInject},
		{name: "placeholder in query and path", path: "/bot/PLACEHOLDER-abc/send?key=PLACEHOLDER-abc",
			check: func(t *testing.T, r *http.Request) {
				if r.URL.Path != "/bot/"+secret+"/send" || r.URL.Query().Get("key") != secret {
					t.Errorf("url = %s", r.URL)
				}
			}, action: ActionInject},
		{name: "no placeholder sent, placeholder mode adds nothing", path: "/",
			check: func(t *testing.T, r *http.Request) {
				if r.Header.Get("Authorization") != "" {
					t.Errorf("unexpected Authorization")
				}
			}, action: ActionPass},
		{name: "method not allowed gets nothing", inject: []Injection{{Type: "bearer"}}, methods: []string{"POST"}, path: "/",
			check: func(t *testing.T, r *http.Request) {
				if r.Header.Get("Authorization") != "" {
					t.Errorf("secret sent to a GET")
				}
			}, action: ActionPass},
		{name: "path glob", inject: []Injection{{Type: "header", Name: "X-Key", Format: "k={{secret}}"}}, paths: []string{"/v1/*"}, path: "/v1/a/b",
			check: func(t *testing.T, r *http.Request) {
				if g := r.Header.Get("X-Key"); g != "k="+secret {
					t.Errorf("X-Key = %q", g)
				}
			}, action: ActionInject},
		{name: "query", inject: []Injection{{Type: "query", Name: "api_key"}}, path: "/q?a=1",
			check: func(t *testing.T, r *http.Request) {
				if r.URL.Query().Get("api_key") != secret || r.URL.Query().Get("a") != "1" {
					t.Errorf("query = %s", r.URL.RawQuery)
				}
			}, action: ActionInject},
		{name: "basic", inject: []Injection{{Type: "basic"}}, path: "/",
			check: func(t *testing.T, r *http.Request) {
				u, p, ok := r.BasicAuth()
				if !ok || u != "x-access-token" || p != secret {
					t.Errorf("basic = %q %q %v", u, p, ok)
				}
			}, action: ActionInject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cred := &Credential{Name: "api", Placeholder: "PLACEHOLDER-abc", Hosts: []string{"api.example.test"},
				Inject: tc.inject, Methods: tc.methods, Paths: tc.paths, Secret: staticSecret(secret)}
			h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
			before := len(got.all())
			req, _ := http.NewRequest("GET", "https://api.example.test"+tc.path, nil)
			if tc.send != nil {
				tc.send(req)
			}
			res, err := h.client(testPassword, nil).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			reqs := got.all()
			if len(reqs) != before+1 {
				t.Fatalf("upstream got %d requests", len(reqs)-before)
			}
			r := reqs[len(reqs)-1]
			tc.check(t, r)
			if r.Header.Get("Proxy-Authorization") != "" {
				t.Error("Proxy-Authorization forwarded")
			}
			recs := h.waitRecords(t, 1)
			rec := recs[0]
			if rec.Action != tc.action || rec.Host != "api.example.test" || rec.Port != 443 || rec.Status != 200 {
				t.Errorf("record = %+v", rec)
			}
			if strings.Contains(fmt.Sprintf("%+v", rec), secret) || strings.Contains(fmt.Sprintf("%+v", rec), "PLACEHOLDER-abc") {
				t.Errorf("record leaks: %+v", rec)
			}
		})
	}
}

// rawProxy sends one raw request to the proxy and returns the response.
func rawProxy(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestProxyAuthRequired(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	cases := []struct{ name, raw string }{
		{"connect without password", "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n"},
		{"connect wrong password", "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\nProxy-Authorization: " + basicAuthValue("agentvault", "nope") + "\r\n\r\n"},
		{"plain without password", "GET http://other.example.test/ HTTP/1.1\r\nHost: other.example.test\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := rawProxy(t, h.addr, tc.raw)
			if res.StatusCode != http.StatusProxyAuthRequired || res.Header.Get("Proxy-Authenticate") == "" {
				t.Fatalf("got %s %v", res.Status, res.Header)
			}
		})
	}
	if n := len(got.all()); n != 0 {
		t.Fatalf("upstream got %d requests", n)
	}
	for _, r := range h.waitRecords(t, 3) {
		if r.Action != ActionAuthFailed || r.Status != 407 {
			t.Errorf("record %+v", r)
		}
	}
}

func TestDenyAndPlainHTTP(t *testing.T) {
	up := newTestCA(t, "upstream")
	plainHits := 0
	plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plainHits++; io.WriteString(w, "plain") })}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go plain.Serve(ln)
	t.Cleanup(func() { plain.Close() })
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{DefaultDeny: true, Allow: []string{"ok.example.test"}},
		map[string]string{"api.example.test:80": ln.Addr().String(), "ok.example.test:80": ln.Addr().String()})
	c := h.client(testPassword, nil)

	_, err := c.Get("https://denied.example.test/")
	if err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("CONNECT to denied host: %v", err)
	}
	res, err := c.Get("http://api.example.test/steal")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 403 || !strings.Contains(string(body), "only reachable over HTTPS") {
		t.Fatalf("plain http to credentialed host: %d %s", res.StatusCode, body)
	}
	res, err = c.Get("http://ok.example.test/fine")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || plainHits != 1 {
		t.Fatalf("allowed plain http: %d hits=%d", res.StatusCode, plainHits)
	}
	recs := h.waitRecords(t, 3)
	want := []Action{ActionDeny, ActionDeny, ActionPass}
	for i, r := range recs[:3] {
		if r.Action != want[i] {
			t.Errorf("record %d = %+v, want %s", i, r, want[i])
		}
	}
}

func TestTunnelForUncredentialedHost(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "free.example.test")
	h := startProxy(t, up, nil, Egress{}, map[string]string{"free.example.test:443": hostPortOf(srv)})
	// A tunnel is not MITM'd: the client sees the upstream's own certificate.
	c := h.client(testPassword, up.Pool)
	c.Transport.(*http.Transport).TLSClientConfig.RootCAs = up.Pool
	res, err := c.Get("https://free.example.test/x")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	c.CloseIdleConnections()
	if len(got.all()) != 1 {
		t.Fatal("upstream not reached")
	}
	recs := h.waitRecords(t, 1)
	if recs[0].Action != ActionTunnel || recs[0].RespBytes == 0 || recs[0].ReqBytes == 0 {
		t.Errorf("record %+v", recs[0])
	}
}

func TestHostHeaderMustMatchConnectTarget(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	req, _ := http.NewRequest("GET", "https://api.example.test/", nil)
	req.Host = "evil.example.test"
	res, err := h.client(testPassword, nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMisdirectedRequest || len(got.all()) != 0 {
		t.Fatalf("status %d, upstream got %d", res.StatusCode, len(got.all()))
	}
}

func TestUpstreamTLSFailureSaysWhy(t *testing.T) {
	up := newTestCA(t, "upstream")
	other := newTestCA(t, "not trusted")
	srv, _ := upstream(t, other, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	res, err := h.client(testPassword, nil).Get("https://api.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 502 || !strings.Contains(string(body), "TLS") {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	if r := h.waitRecords(t, 1)[0]; r.Action != ActionError || r.Error == "" {
		t.Errorf("record %+v", r)
	}
}

func TestLoopbackRefusedWithoutMapping(t *testing.T) {
	up := newTestCA(t, "upstream")
	h := startProxy(t, up, nil, Egress{}, nil)
	res := rawProxy(t, h.addr, "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nProxy-Authorization: "+basicAuthValue("agentvault", testPassword)+"\r\n\r\n")
	if res.StatusCode != 403 {
		t.Fatalf("status %s", res.Status)
	}
}

func TestServerSentEventsStream(t *testing.T) {
	up := newTestCA(t, "upstream")
	sent := make(chan time.Time, 5)
	srv, _ := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			sent <- time.Now()
			time.Sleep(150 * time.Millisecond)
		}
	}), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	res, err := h.client(testPassword, nil).Get("https://api.example.test/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n')
	arrived := time.Now()
	if err != nil || line != "data: 0\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	delay := arrived.Sub(<-sent)
	t.Logf("first event delay through the proxy: %v", delay)
	if delay > 100*time.Millisecond {
		t.Fatalf("first event arrived %v after it was sent: buffered", delay)
	}
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: 2") {
		t.Fatalf("rest %q", rest)
	}
}

func TestExpectContinueUpload(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, _ := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	c := h.client(testPassword, nil)
	c.Transport.(*http.Transport).ExpectContinueTimeout = 5 * time.Second
	req, _ := http.NewRequest("POST", "https://api.example.test/upload", strings.NewReader(strings.Repeat("x", 100000)))
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "ok POST /upload" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("upload took %v: 100 Continue not answered", el)
	}
	if r := h.waitRecords(t, 1)[0]; r.ReqBytes != 100000 || r.Action != ActionInject {
		t.Errorf("record %+v", r)
	}
}

// TestClientHandshakeFailureRecorded: a client that does not trust the
// session CA is refused by its own TLS stack; the audit must still say so.
func TestClientHandshakeFailureRecorded(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	// Trusts only the upstream's CA, not the session CA.
	c := h.client(testPassword, up.Pool)
	c.Transport.(*http.Transport).TLSClientConfig.RootCAs = up.Pool
	if _, err := c.Get("https://api.example.test/"); err == nil {
		t.Fatal("a client that does not trust the session CA got through")
	}
	rec := h.waitRecords(t, 1)[0]
	if rec.Action != ActionError || rec.Host != "api.example.test" || !strings.Contains(rec.Error, "handshake") {
		t.Fatalf("record %+v", rec)
	}
	if len(got.all()) != 0 {
		t.Fatal("upstream reached")
	}
}

// TestRefusalBodiesMasked: whatever text a refusal carries, the body the
// agent gets never holds a secret or a placeholder.
func TestRefusalBodiesMasked(t *testing.T) {
	up := newTestCA(t, "upstream")
	cred := &Credential{Name: "api", Placeholder: "PH-mask-0000000", Hosts: []string{"api.example.test"}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, nil)
	req, _ := http.NewRequest("GET", "https://api.example.test/", nil)
	res := h.p.refusal(req, &exchange{}, 502, ActionError, "upstream said "+secret+" and PH-mask-0000000")
	body, _ := io.ReadAll(res.Body)
	if strings.Contains(string(body), secret) || strings.Contains(string(body), "PH-mask") || !strings.Contains(string(body), "[api]") {
		t.Fatalf("body %q", body)
	}
}
