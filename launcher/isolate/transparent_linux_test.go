package isolate

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/agentvault/agentvault/internal/testsupport"
	"github.com/agentvault/agentvault/launcher"
	"github.com/agentvault/agentvault/proxy"
)

const transparentSecret = "real-secret-7f3a9c"

// transparentHelper runs $ISOLATE_SCRIPT in a transparent sandbox (unless
// $ISOLATE_TRANSPARENT is "0") whose :443 and :80 a session proxy serves.
// Its rules: api.example.test holds a bearer credential, denied.example.test
// is denied; every name the proxy dials maps to an upstream on the host's
// loopback that answers "auth=<Authorization header>", the secret in it
// written "<the secret>". The CA bundle the
// script needs is ./ca.pem; each proxy record goes to stderr as
// "record ACTION HOST".
func transparentHelper() int {
	fail := func(what string, err error) int {
		fmt.Fprintln(os.Stderr, what+":", err)
		return 70
	}
	upCA, err := testsupport.NewCA("upstream")
	if err != nil {
		return fail("upstream CA", err)
	}
	sessCA, err := testsupport.NewCA("session")
	if err != nil {
		return fail("session CA", err)
	}
	// The proxy masks a secret reflected in a response: the upstream names it.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "auth="+strings.ReplaceAll(r.Header.Get("Authorization"), transparentSecret, "<the secret>"))
	})
	leaf, err := upCA.Leaf("api.example.test", "other.example.test")
	if err != nil {
		return fail("leaf", err)
	}
	tlsUp := httptest.NewUnstartedServer(echo)
	tlsUp.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	tlsUp.StartTLS()
	defer tlsUp.Close()
	plainUp := httptest.NewServer(echo)
	defer plainUp.Close()
	if err := os.WriteFile("ca.pem", append(sessCA.PEM(), upCA.PEM()...), 0o644); err != nil {
		return fail("ca.pem", err)
	}

	p := &proxy.Proxy{
		Password: "pw-transparent",
		CA:       sessCA.Cert, CAKey: sessCA.Key,
		Credentials: []*proxy.Credential{{Name: "api", Hosts: []string{"api.example.test"},
			Inject: []proxy.Injection{{Type: "bearer"}}, Secret: func() string { return transparentSecret }}},
		Egress:  proxy.Egress{Deny: []string{"denied.example.test"}},
		RootCAs: upCA.Pool,
		ConnectTo: map[string]string{
			"api.example.test:443":   tlsUp.Listener.Addr().String(),
			"other.example.test:443": tlsUp.Listener.Addr().String(),
			"plain.example.test:80":  plainUp.Listener.Addr().String(),
			"api.example.test:80":    plainUp.Listener.Addr().String(),
		},
		Record: func(r proxy.Record) { fmt.Fprintf(os.Stderr, "record %s %s\n", r.Action, r.Host) },
	}
	if _, err := p.Start("127.0.0.1:0"); err != nil {
		return fail("proxy", err)
	}
	defer p.Close()

	dir, _ := os.Getwd()
	transparent := os.Getenv("ISOLATE_TRANSPARENT") != "0"
	sb, err := Start(Spec{Dir: dir, Transparent: transparent})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 78
	}
	defer sb.Close()
	if transparent {
		tlsLn, httpLn, err := sb.ListenTransparent()
		if err != nil {
			return fail("listen", err)
		}
		if err := p.ServeTransparent(tlsLn, httpLn); err != nil {
			return fail("serve", err)
		}
	}
	status, err := launcher.Run(context.Background(), launcher.Cmd{
		Argv:    []string{"/bin/sh", "-c", os.Getenv("ISOLATE_SCRIPT")},
		Env:     []string{"PATH=/usr/bin:/bin"},
		Sandbox: sb,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
	}
	return status
}

// TestTransparent: in a transparent sandbox, clients with their proxy
// support switched off resolve every name to loopback and meet the proxy's
// rules on :443 and :80: the credentialed host gets its secret, an unbound
// host is tunnelled, a denied host is refused and recorded, plain HTTP never
// carries a secret. Without transparent mode, names do not resolve.
func TestTransparent(t *testing.T) {
	const curl = `curl -sS --noproxy '*' --max-time 5 --cacert ca.pem `
	const lookup = `python3 -c 'import socket
try: print(socket.gethostbyname("anything.example.test"))
except OSError: print("unresolved")'`
	cases := []struct {
		name        string
		transparent bool
		script      string
		want        string
		record      string // a line the proxy's records must hold
	}{
		{"every name resolves to loopback", true, lookup, "127.0.0.1", ""},
		{"no resolution without transparent mode", false, lookup, "unresolved", ""},
		{"credentialed host gets its secret on :443", true, curl + "https://api.example.test/v1", "auth=Bearer <the secret>", "record inject api.example.test"},
		{"Python without proxy support gets the secret too", true, `python3 -c 'import ssl, urllib.request as u
o = u.build_opener(u.ProxyHandler({}), u.HTTPSHandler(context=ssl.create_default_context(cafile="ca.pem")))
print(o.open("https://api.example.test/py", timeout=5).read().decode())'`, "auth=Bearer <the secret>", "record inject api.example.test"},
		{"unbound host tunnelled untouched", true, curl + "-H 'Authorization: Bearer mine' https://other.example.test/", "auth=Bearer mine", "record tunnel other.example.test"},
		{"denied host refused and recorded", true, curl + "https://denied.example.test/ 2>/dev/null || echo refused", "refused", "record deny denied.example.test"},
		{"plain HTTP routed by Host, no secret", true, curl + "http://plain.example.test/", "auth=", "record pass plain.example.test"},
		{"plain HTTP to the credentialed host refused", true, curl + "-o /dev/null -w '%{http_code}' http://api.example.test/", "403", "record deny api.example.test"},
	}
	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					env := map[string]string{helperVar: "transparent", "ISOLATE_TRANSPARENT": "0"}
					if c.transparent {
						env["ISOLATE_TRANSPARENT"] = "1"
					}
					res := r.run(t, nil, env, c.script)
					if res.code != 0 || strings.TrimSpace(res.stdout) != c.want {
						t.Errorf("exit %d, stdout %q; want 0, %q (stderr %q)", res.code, strings.TrimSpace(res.stdout), c.want, res.stderr)
					}
					if c.record != "" && !strings.Contains(res.stderr, c.record+"\n") {
						t.Errorf("records %q lack %q", res.stderr, c.record)
					}
				})
			}
		})
	}
}
