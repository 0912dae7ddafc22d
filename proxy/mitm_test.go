package proxy

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMITMLeaf: the client gets a clean "200 Connection established" (no
// body framing on a 2xx CONNECT) and an ECDSA leaf from the session CA for
// the CONNECT target, whatever name its ClientHello asks for.
func TestMITMLeaf(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, _ := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	for _, sni := range []string{"api.example.test", "other.example.test", ""} {
		c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\nProxy-Authorization: %s\r\n\r\n", basicAuthValue("agentvault", testPassword))
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", res, err)
		}
		if _, ok := res.Header["Content-Length"]; ok || len(res.TransferEncoding) > 0 {
			t.Errorf("2xx CONNECT carries body framing: %v", res.Header)
		}
		tc := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("sni %q: %v", sni, err)
		}
		leaf := tc.ConnectionState().PeerCertificates[0]
		if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
			t.Errorf("leaf key is %T, want ECDSA", leaf.PublicKey)
		}
		if err := leaf.VerifyHostname("api.example.test"); err != nil {
			t.Errorf("sni %q: leaf %v", sni, err)
		}
		if err := leaf.CheckSignatureFrom(h.session.Cert); err != nil {
			t.Errorf("leaf not from the session CA: %v", err)
		}
		tc.Close()
	}
}

// TestConnectInsideConnectRefused: a decrypted connection carries requests
// for its CONNECT target only; a second CONNECT inside it is refused.
func TestConnectInsideConnectRefused(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	res := rawMITMRequest(t, h, "api.example.test:443", "CONNECT other.example.test:443 HTTP/1.1\r\nHost: other.example.test:443\r\n\r\n")
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusBadRequest || len(got.all()) != 0 {
		t.Fatalf("status %d, upstream got %d", res.StatusCode, len(got.all()))
	}
}

// TestConnectNameLeakWarnedOnMITM: under guard.leak: warn, a secret in the
// name of a CONNECT that is intercepted is still reported, on the records
// of the requests inside (the CONNECT has none of its own).
func TestConnectNameLeakWarnedOnMITM(t *testing.T) {
	const other = "othersecretvalue77"
	up := newTestCA(t, "upstream")
	name := other + ".example.test"
	srv, _ := upstream(t, up, echoHandler(), name)
	creds := []*Credential{
		{Name: "wild", Hosts: []string{"*.example.test"}, Secret: staticSecret(secret)},
		{Name: "other", Hosts: []string{"other.test"}, Secret: staticSecret(other)},
	}
	h := startProxy(t, up, creds, Egress{}, map[string]string{name + ":443": hostPortOf(srv)},
		func(p *Proxy) { p.Guard = Guard{Leak: "warn"} })
	res := rawMITMRequest(t, h, name+":443", "GET / HTTP/1.1\r\nHost: "+name+"\r\nConnection: close\r\n\r\n")
	io.Copy(io.Discard, res.Body)
	recs := h.waitRecords(t, 1)
	r := recs[len(recs)-1]
	if !strings.Contains(r.Warning, `secret of "other"`) {
		t.Fatalf("record %+v: no warning about the host name", r)
	}
	if strings.Contains(r.Warning+r.Host, other) {
		t.Fatalf("record carries the secret: %+v", r)
	}
}
