package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// openDecrypted opens a CONNECT to api.example.test through h and completes
// TLS with the proxy, as a client that trusts the session CA would.
func openDecrypted(t *testing.T, h *harness) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\nProxy-Authorization: %s\r\n\r\n", basicAuthValue("agentvault", testPassword))
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", res, err)
	}
	tc := tls.Client(c, &tls.Config{ServerName: "api.example.test", RootCAs: h.session.Pool})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc, bufio.NewReader(tc)
}

// TestDecryptedConnectionLoop drives one decrypted connection with raw
// requests, the way an odd or hostile client could, and checks what each
// gets back and whether the connection stays usable afterwards.
func TestDecryptedConnectionLoop(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	get := "GET /next HTTP/1.1\r\nHost: api.example.test\r\n\r\n"
	tests := []struct {
		name string
		send string
		// want are the status codes of the responses to send, in order
		// (a 100 included); then, if open, a GET must still work.
		want     []int
		open     bool
		upstream int    // requests the upstream must have received for send
		says     string // in the last response's body, when set
	}{
		{"keep-alive", get + get, []int{200, 200}, true, 2, ""},
		{"expect 100-continue is answered and keeps the connection",
			"POST /up HTTP/1.1\r\nHost: api.example.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
			[]int{100, 200}, true, 1, ""},
		{"the body of a refused request is read past",
			"POST /up HTTP/1.1\r\nHost: other.example.test\r\nContent-Length: 11\r\n\r\nhello world",
			[]int{http.StatusMisdirectedRequest}, true, 0, ""},
		{"the chunked body of a refused request is read past",
			"POST /up HTTP/1.1\r\nHost: other.example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			[]int{http.StatusMisdirectedRequest}, true, 0, ""},
		{"Connection: close ends it", "GET / HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n", []int{200}, false, 1, ""},
		{"HTTP/1.0 ends it", "GET / HTTP/1.0\r\nHost: api.example.test\r\n\r\n", []int{200}, false, 1, ""},
		{"a malformed request gets a 400", "NOT A REQUEST\r\n\r\n", []int{400}, false, 0, "agentvault: malformed request"},
		{"an endless header gets a 431", "GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Long: " + strings.Repeat("a", 2*maxHeaderBytes) + "\r\n\r\n",
			[]int{http.StatusRequestHeaderFieldsTooLarge}, false, 0, "agentvault: request header over 1 MiB"},
		{"CONNECT inside the connection is refused", "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n", []int{400}, false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
			before := len(got.all())
			tc, br := openDecrypted(t, h)
			// Written aside: the proxy may answer (and stop reading)
			// before it has read all of it.
			wrote := make(chan error, 1)
			go func() { _, err := io.WriteString(tc, tt.send); wrote <- err }()
			for i, want := range tt.want {
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				body, _ := io.ReadAll(res.Body)
				if res.StatusCode != want {
					t.Fatalf("response %d: status %d (%q), want %d", i, res.StatusCode, body, want)
				}
				if i == len(tt.want)-1 && !strings.Contains(string(body), tt.says) {
					t.Fatalf("last response says %q, want %q in it", body, tt.says)
				}
			}
			if n := len(got.all()) - before; n != tt.upstream {
				t.Fatalf("upstream got %d requests, want %d", n, tt.upstream)
			}
			if tt.says != "" {
				// Refused before any rule could read it: still recorded.
				last := tt.want[len(tt.want)-1]
				if r := h.waitRecords(t, 1); r[0].Status != last || r[0].Action != ActionDeny || r[0].Host != "api.example.test" {
					t.Fatalf("record %+v, want a deny with status %d", r[0], last)
				}
			}
			if !tt.open {
				if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
					t.Fatalf("connection still open after the last response (read: %v)", err)
				}
				return
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			io.WriteString(tc, get)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("next request on the same connection: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != 200 || string(body) != "ok GET /next" {
				t.Fatalf("next request: %d %q", res.StatusCode, body)
			}
			if a := got.all(); a[len(a)-1].Header.Get("Authorization") != "Bearer "+secret {
				t.Fatalf("next request was not injected")
			}
		})
	}
}

// TestDecryptedLongUnreadBodyCloses: a refused request whose body is longer
// than the proxy reads past ends the connection after the answer, instead
// of the proxy reading (or the client sending) it all.
func TestDecryptedLongUnreadBodyCloses(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, _ := upstream(t, up, echoHandler(), "api.example.test")
	h := startProxy(t, up, nil, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)}, func(p *Proxy) { p.Egress.InspectAll = true })
	tc, br := openDecrypted(t, h)
	size := 4 * maxDrain
	go func() {
		fmt.Fprintf(tc, "POST / HTTP/1.1\r\nHost: other.example.test\r\nContent-Length: %d\r\n\r\n", size)
		tc.Write([]byte(strings.Repeat("x", size)))
	}()
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("%v %v", res, err)
	}
	io.ReadAll(res.Body)
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open")
	}
}

// TestCloseEndsDecryptedConnections: closing the proxy ends the connections
// it serves itself, idle ones included, promptly.
func TestCloseEndsDecryptedConnections(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, _ := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	tc, br := openDecrypted(t, h)
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(res.Body)
	start := time.Now()
	h.p.Close()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after Close")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v to end an idle connection", d)
	}
}

// TestDecryptedClientGoneStillRecords: a client that leaves before its
// response could be written still gets its exchange recorded, and the
// upstream connection is not left half-read.
func TestDecryptedClientGoneStillRecords(t *testing.T) {
	up := newTestCA(t, "upstream")
	gone := make(chan struct{})
	srv, _ := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gone:
		case <-time.After(5 * time.Second):
		}
		// A header larger than the connection's writer: writing it fails
		// part-way once the client is gone.
		for i := 0; i < 16; i++ {
			w.Header().Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("b", 1000))
		}
		io.WriteString(w, "late")
	}), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	tc, _ := openDecrypted(t, h)
	io.WriteString(tc, "GET /slow HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the request reaches the upstream
	tc.NetConn().(*net.TCPConn).SetLinger(0)
	tc.Close()
	close(gone)
	recs := h.waitRecords(t, 1)
	if recs[0].Path != "/slow" {
		t.Fatalf("record %+v", recs[0])
	}
}

// TestDecryptedIdleConnectionCloses: a decrypted connection that sends
// nothing more is closed after the idle timeout, between requests and in
// the middle of a header alike.
func TestDecryptedIdleConnectionCloses(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, _ := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Secret: staticSecret(secret)}
	const idle = 200 * time.Millisecond
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)}, func(p *Proxy) { p.idle = idle })
	for _, after := range []string{"", "GET / HTTP/1.1\r\nHost: api.exa"} {
		tc, br := openDecrypted(t, h)
		// Before the request: the proxy's wait for the next one starts
		// after it answered, so however slow this machine, the connection
		// cannot close sooner than idle after this.
		start := time.Now()
		io.WriteString(tc, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(res.Body)
		io.WriteString(tc, after)
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("after %q: read %v, want the proxy to close", after, err)
		}
		if d := time.Since(start); d < idle {
			t.Fatalf("after %q: closed after %v, before the idle timeout", after, d)
		}
	}
}
