package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// corpProxy is a minimal CONNECT proxy standing in for the invoking
// environment's corporate proxy; it maps target names to local addresses.
func corpProxy(t *testing.T, routes map[string]string) (*url.URL, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect || req.Header.Get("Proxy-Authorization") != basicAuthValue("corp", "pw") {
					io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
					return
				}
				to, ok := routes[req.Host]
				if !ok {
					io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
					return
				}
				up, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer up.Close()
				mu.Lock()
				conns = append(conns, up)
				mu.Unlock()
				n.Add(1)
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go io.Copy(up, br)
				io.Copy(c, up)
			}()
		}
	}()
	return &url.URL{Scheme: "http", Host: ln.Addr().String(), User: url.UserPassword("corp", "pw")}, &n
}

// TestInvokingEnvironmentProxyIsUsed: agentvault's own upstream connections,
// MITM'd and tunnelled alike, go through the proxy its environment names.
func TestInvokingEnvironmentProxyIsUsed(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test", "free.example.test")
	pu, connects := corpProxy(t, map[string]string{"api.example.test:443": hostPortOf(srv), "free.example.test:443": hostPortOf(srv)})
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, nil, func(p *Proxy) {
		p.UpstreamProxy = func(*http.Request) (*url.URL, error) { return pu, nil }
	})
	for _, tc := range []struct {
		url   string
		roots bool
	}{{"https://api.example.test/x", false}, {"https://free.example.test/y", true}} {
		c := h.client(testPassword, nil)
		if tc.roots {
			c.Transport.(*http.Transport).TLSClientConfig.RootCAs = up.Pool
		}
		res, err := c.Get(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", tc.url, res.StatusCode)
		}
	}
	if n := connects.Load(); n != 2 {
		t.Fatalf("corporate proxy saw %d CONNECTs, want 2 (MITM'd and tunnelled)", n)
	}
	if r := got.all()[0]; r.Header.Get("Authorization") != "Bearer "+secret {
		t.Fatalf("injection through the corporate proxy: %q", r.Header.Get("Authorization"))
	}
}
