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
)

// TestReasonPhraseNotReflected: the status line's reason phrase is upstream
// text too; a bound upstream that puts the injected secret there must not
// hand it to the agent, whatever way the response is written back.
func TestReasonPhraseNotReflected(t *testing.T) {
	up := newTestCA(t, "upstream")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{issueLeaf(t, up, "api.example.test")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					auth := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
					switch req.URL.Path {
					case "/length":
						fmt.Fprintf(c, "HTTP/1.1 200 OK %s\r\nContent-Length: 2\r\n\r\nok", auth)
					case "/chunked":
						fmt.Fprintf(c, "HTTP/1.1 201 Made %s\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", auth)
					}
				}
			}(c)
		}
	}()
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": ln.Addr().String()})
	for _, path := range []string{"/length", "/chunked"} {
		res := rawMITMRequest(t, h, "api.example.test:443", "GET "+path+" HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")
		io.Copy(io.Discard, res.Body)
		if strings.Contains(res.Status, secret) {
			t.Errorf("%s: status line %q carries the secret", path, res.Status)
		}
		if res.StatusCode/100 != 2 {
			t.Errorf("%s: status %q", path, res.Status)
		}
	}
}
