package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// transparentClient is a client that ignores proxies: every https:// URL
// connects to tlsAddr and every http:// URL to httpAddr, as a sandbox's
// loopback-only name resolution makes them do.
func transparentClient(h *harness, up *http.Transport, tlsAddr, httpAddr string) *http.Client {
	pool := up.TLSClientConfig.RootCAs.Clone()
	pool.AddCert(h.session.Cert)
	return &http.Client{
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				to := httpAddr
				if strings.HasSuffix(addr, ":443") {
					to = tlsAddr
				}
				return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, to)
			},
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			DisableKeepAlives: true,
		},
		Timeout: 10 * time.Second,
	}
}

// TestTransparent: a client that ignores the proxy variables, connecting to
// the sandbox's :443 and :80, meets the same rules as through the proxy
// port: a credentialed host is decrypted and gets its secret, an unbound
// host is tunnelled untouched to the real host, a denied host or a secret
// in the server name is refused and recorded, plain HTTP never gets a
// secret.
func TestTransparent(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test", "other.example.test")
	plainGot := &seen{}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainGot.add(r.Clone(r.Context()))
		io.WriteString(w, "plain")
	}))
	t.Cleanup(plain.Close)
	upTransport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: up.Pool}}
	mapping := map[string]string{
		"api.example.test:443":   hostPortOf(srv),
		"other.example.test:443": hostPortOf(srv),
		"plain.example.test:80":  plain.Listener.Addr().String(),
		"api.example.test:80":    plain.Listener.Addr().String(),
	}
	tests := []struct {
		name     string
		url      string
		header   string // Authorization the agent sends
		status   int    // 0: the request fails (connection refused by the proxy)
		action   Action
		host     string
		upAuth   string // Authorization the TLS upstream must see; "-": not reached
		plainHit bool   // the plain upstream is reached
		issuer   string // CommonName of the certificate's issuer the client sees
	}{
		{name: "credentialed host decrypted and injected", url: "https://api.example.test/v1",
			status: 200, action: ActionInject, host: "api.example.test", upAuth: "Bearer " + secret, issuer: "session"},
		{name: "unbound host tunnelled", url: "https://other.example.test/x", header: "Bearer PLACEHOLDER-abc",
			status: 200, action: ActionTunnel, host: "other.example.test", upAuth: "Bearer PLACEHOLDER-abc", issuer: "upstream"},
		{name: "denied host refused", url: "https://denied.example.test/",
			action: ActionDeny, host: "denied.example.test", upAuth: "-"},
		{name: "secret in the server name blocked", url: "https://" + secret + ".evil.example.test/",
			action: ActionLeakBlocked, host: "[api].evil.example.test", upAuth: "-"},
		{name: "plain HTTP to a credentialed host refused", url: "http://api.example.test/", header: "Bearer PLACEHOLDER-abc",
			status: 403, action: ActionDeny, host: "api.example.test", upAuth: "-"},
		{name: "plain HTTP routed by Host, no secret", url: "http://plain.example.test/p", header: "Bearer PLACEHOLDER-abc",
			status: 200, action: ActionPass, host: "plain.example.test", upAuth: "-", plainHit: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cred := &Credential{Name: "api", Placeholder: "PLACEHOLDER-abc", Hosts: []string{"api.example.test"},
				Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
			h := startProxy(t, up, []*Credential{cred}, Egress{Deny: []string{"denied.example.test"}}, mapping)
			tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			httpLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := h.p.ServeTransparent(tlsLn, httpLn); err != nil {
				t.Fatal(err)
			}
			beforeTLS, beforePlain := len(got.all()), len(plainGot.all())
			req, _ := http.NewRequest("GET", tc.url, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			res, err := transparentClient(h, upTransport, tlsLn.Addr().String(), httpLn.Addr().String()).Do(req)
			if tc.status == 0 {
				if err == nil {
					res.Body.Close()
					t.Fatalf("request succeeded with %d, want a refusal", res.StatusCode)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
				}
				if tc.issuer != "" && res.TLS.PeerCertificates[0].Issuer.CommonName != tc.issuer {
					t.Errorf("certificate issued by %q, want %q", res.TLS.PeerCertificates[0].Issuer.CommonName, tc.issuer)
				}
			}
			recs := h.waitRecords(t, 1)
			if r := recs[len(recs)-1]; r.Action != tc.action || r.Host != tc.host {
				t.Errorf("record %+v, want action %s host %s", r, tc.action, tc.host)
			}
			reached := got.all()[beforeTLS:]
			switch {
			case tc.upAuth == "-" && len(reached) > 0:
				t.Errorf("TLS upstream reached: %v", reached[0].Header)
			case tc.upAuth != "-" && (len(reached) != 1 || reached[0].Header.Get("Authorization") != tc.upAuth):
				t.Errorf("TLS upstream saw %d requests, want one with Authorization %q", len(reached), tc.upAuth)
			}
			plainReached := plainGot.all()[beforePlain:]
			if (len(plainReached) > 0) != tc.plainHit {
				t.Fatalf("plain upstream reached %d times, want %v", len(plainReached), tc.plainHit)
			}
			for _, r := range plainReached {
				if strings.Contains(r.Header.Get("Authorization"), secret) {
					t.Errorf("plain HTTP carried the secret")
				}
			}
		})
	}
}

// TestTransparentTLSWithoutName: a TLS client that sends no server name
// (as for an IP address) is refused before anything is dialled, and the
// refusal is recorded; a connection closed before any byte is no request
// and leaves no record.
func TestTransparentTLSWithoutName(t *testing.T) {
	up := newTestCA(t, "upstream")
	h := startProxy(t, up, nil, Egress{}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.p.ServeTransparent(ln, nil); err != nil {
		t.Fatal(err)
	}
	probe, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake(); err == nil {
		t.Fatal("handshake without a server name succeeded")
	}
	h.waitRecords(t, 1)
	time.Sleep(200 * time.Millisecond) // room for a record of the probe, were there one
	if recs := h.recs(); len(recs) != 1 || recs[0].Action != ActionDeny || recs[0].Host != "" {
		t.Errorf("records %+v, want one deny without host", recs)
	}
}

// TestTransparentHTTPOnlyTagged: the proxy port itself still wants the
// password for an origin-form request; only the sandbox's :80 is spared it.
func TestTransparentHTTPOnlyTagged(t *testing.T) {
	up := newTestCA(t, "upstream")
	h := startProxy(t, up, nil, Egress{}, nil)
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: plain.example.test\r\n\r\n")
	b := make([]byte, 12)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "HTTP/1.1 407" {
		t.Fatalf("got %q %v, want a 407", b, err)
	}
}
