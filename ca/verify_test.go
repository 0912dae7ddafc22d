package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/martian/v3/mitm"
)

// constraintCase is a leaf host and whether a constrained session CA's
// leaf for it must be accepted.
type constraintCase struct {
	host string
	ok   bool
}

// The hosts the CA of these tests is built for.
var testHosts = []string{"api.example.com", "*.example.org:8443"}

var constraintCases = []constraintCase{
	{"api.example.com", true},
	{"a.example.org", true},
	{"a.b.example.org", true},
	{"example.org", false},      // *.domain excludes the domain itself
	{"xexample.org", false},     // suffix without a label boundary
	{"evil.com", false},         // outside
	{"example.com", false},      // parent of an exact host
	{"xapi.example.com", false}, // sibling sharing a suffix
	{"api.example.com.evil.com", false},
	{"127.0.0.1", false}, // every IP range is excluded
	{"::1", false},
}

// emptyCases apply to a CA built with no hosts: nothing usable is permitted.
var emptyCases = []constraintCase{
	{"example.com", false},
	{"localhost", false},
	{"127.0.0.1", false},
}

func goVerify(a *Authority, leaf *x509.Certificate, host string) error {
	roots := x509.NewCertPool()
	roots.AddCert(a.Certificate())
	_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func TestNameConstraintsGo(t *testing.T) {
	run := func(t *testing.T, a *Authority, cases []constraintCase) {
		for _, c := range cases {
			l, err := a.Leaf(c.host, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			err = goVerify(a, l.Leaf, c.host)
			if c.ok && err != nil {
				t.Errorf("%s: refused: %v", c.host, err)
			}
			if !c.ok {
				var ie x509.CertificateInvalidError
				if !errors.As(err, &ie) || ie.Reason != x509.CANotAuthorizedForThisName {
					t.Errorf("%s: want a name constraint refusal, got %v", c.host, err)
				}
			}
		}
	}
	t.Run("hosts", func(t *testing.T) { run(t, mustNew(t, Options{Hosts: testHosts}), constraintCases) })
	t.Run("empty", func(t *testing.T) { run(t, mustNew(t, Options{}), emptyCases) })
	t.Run("unconstrained", func(t *testing.T) {
		a := mustNew(t, Options{Unconstrained: true})
		for _, c := range []struct {
			host string
			ok   bool
		}{{"evil.com", true}, {"deep.sub.example.org", true}, {"127.0.0.1", false}, {"::1", false}} {
			l, err := a.Leaf(c.host, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := goVerify(a, l.Leaf, c.host); (err == nil) != c.ok {
				t.Errorf("%s: verify error %v, want accepted %v", c.host, err, c.ok)
			}
		}
	})
}

// TestMartianLeaves checks the combination the proxy uses: martian's own
// leaf issuer driven by Certificate() and Signer().
func TestMartianLeaves(t *testing.T) {
	a := mustNew(t, Options{Hosts: testHosts})
	cfg, err := mitm.NewConfig(a.Certificate(), a.Signer())
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.TLS()
	for _, c := range constraintCases {
		if net.ParseIP(c.host) != nil {
			continue // martian needs SNI, which never carries an IP
		}
		cert, err := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: c.host})
		if err != nil {
			t.Fatal(err)
		}
		if err := goVerify(a, cert.Leaf, c.host); (err == nil) != c.ok {
			t.Errorf("%s: martian leaf verified=%v, want %v (%v)", c.host, err == nil, c.ok, err)
		}
	}
}

// cleanEnv is the environment for verifier processes: none of the machine's
// SSL_CERT_FILE, CURL_CA_BUNDLE, proxies or git config leaks in.
func cleanEnv(t *testing.T, extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C"}, extra...)
}

func writePEM(t *testing.T, path string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runTool(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestNameConstraintsOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl CLI not installed")
	}
	for _, tc := range []struct {
		name  string
		o     Options
		cases []constraintCase
	}{{"hosts", Options{Hosts: testHosts}, constraintCases}, {"empty", Options{}, emptyCases}} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustNew(t, tc.o)
			dir := t.TempDir()
			caFile := filepath.Join(dir, "ca.pem")
			writePEM(t, caFile, a.Certificate().Raw)
			for i, c := range tc.cases {
				l, err := a.Leaf(c.host, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				leafFile := filepath.Join(dir, fmt.Sprintf("leaf%d.pem", i))
				writePEM(t, leafFile, l.Leaf.Raw)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				out, err := runTool(ctx, cleanEnv(t), openssl, "verify", "-x509_strict", "-purpose", "sslserver",
					"-no-CApath", "-no-CAstore", "-CAfile", caFile, leafFile)
				cancel()
				if c.ok && err != nil {
					t.Errorf("%s: refused: %s", c.host, out)
				}
				if !c.ok && (err == nil || !strings.Contains(out, "violation")) {
					t.Errorf("%s: want a name constraint violation, got %v: %s", c.host, err, out)
				}
			}
		})
	}
}

// tlsServer serves one leaf on 127.0.0.1 and counts HTTP requests, so a
// client that got past the handshake is visible from this side too.
func tlsServer(t *testing.T, cert *tls.Certificate) (port int, hits *atomic.Int32) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}})
	if err != nil {
		t.Fatal(err)
	}
	hits = new(atomic.Int32)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.Header().Set("Content-Type", "text/plain")
		}),
		ErrorLog:          log.New(io.Discard, "", 0), // refused handshakes are expected
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, hits
}

// pythonTLS is run by python3: it handshakes with each server under the given
// name, trusting only the session CA, with X509_STRICT as Python 3.13 sets it.
const pythonTLS = `
import json, socket, ssl, sys
ca, cases = sys.argv[1], json.loads(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(cafile=ca)
ctx.verify_flags |= getattr(ssl, "VERIFY_X509_STRICT", 0)
res = []
for host, port in cases:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=host):
                res.append("ok")
    except ssl.SSLCertVerificationError as e:
        res.append("refused: " + str(e.verify_message))
    except Exception as e:
        res.append("error: " + repr(e))
print(json.dumps(res))
`

func TestNameConstraintsPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	// pyenv shims need the full environment to find the interpreter; ask it
	// where the real one is and run that with a clean environment.
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Skipf("python3 does not run: %v", err)
	}
	py = strings.TrimSpace(string(out))

	for _, tc := range []struct {
		name  string
		o     Options
		cases []constraintCase
	}{{"hosts", Options{Hosts: testHosts}, constraintCases}, {"empty", Options{}, emptyCases}} {
		t.Run(tc.name, func(t *testing.T) {
			a := mustNew(t, tc.o)
			caFile := filepath.Join(t.TempDir(), "ca.pem")
			writePEM(t, caFile, a.Certificate().Raw)
			var args [][2]any
			for _, c := range tc.cases {
				l, err := a.Leaf(c.host, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				port, _ := tlsServer(t, l)
				args = append(args, [2]any{c.host, port})
			}
			js, _ := json.Marshal(args)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, "-c", pythonTLS, caFile, string(js))
			cmd.Env = cleanEnv(t)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("python: %v", err)
			}
			var res []string
			if err := json.Unmarshal(out, &res); err != nil || len(res) != len(tc.cases) {
				t.Fatalf("python output %q: %v", out, err)
			}
			for i, c := range tc.cases {
				if c.ok && res[i] != "ok" {
					t.Errorf("%s: %s", c.host, res[i])
				}
				if !c.ok && !strings.HasPrefix(res[i], "refused:") {
					t.Errorf("%s: want a verification refusal, got %s", c.host, res[i])
				}
			}
		})
	}
}

// TestNameConstraintsGit drives git's HTTPS transport, which on Debian is
// libcurl-gnutls, i.e. GnuTLS's name constraint code.
func TestNameConstraintsGit(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	a := mustNew(t, Options{Hosts: testHosts})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, a.Certificate().Raw)
	for _, c := range constraintCases {
		if c.host == "::1" {
			continue // the test server listens on 127.0.0.1 only
		}
		l, err := a.Leaf(c.host, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		port, hits := tlsServer(t, l)
		p := strconv.Itoa(port)
		url := "https://" + c.host + ":" + p + "/repo.git"
		args := []string{"-c", "http.curloptResolve=" + c.host + ":" + p + ":127.0.0.1", "ls-remote", url}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := runTool(ctx, cleanEnv(t, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "GIT_SSL_CAINFO="+caFile), git, args...)
		cancel()
		reached := hits.Load() > 0
		if c.ok && !reached {
			t.Errorf("%s: git did not get past TLS: %v: %s", c.host, err, out)
		}
		if !c.ok && (reached || err == nil || !strings.Contains(out, "certificate")) {
			t.Errorf("%s: want a certificate refusal, got reached=%v %v: %s", c.host, reached, err, out)
		}
	}
}

// TestNameConstraintsCurl drives the curl CLI (OpenSSL on Debian), which the
// agent most often uses, against a leaf outside the constraints.
func TestNameConstraintsCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	a := mustNew(t, Options{Hosts: testHosts})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writePEM(t, caFile, a.Certificate().Raw)
	for _, c := range constraintCases {
		if c.host == "::1" || c.host == "127.0.0.1" {
			continue // --resolve maps names; IP leaves are covered by the other verifiers
		}
		l, err := a.Leaf(c.host, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		port, hits := tlsServer(t, l)
		p := strconv.Itoa(port)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := runTool(ctx, cleanEnv(t), curl, "-sS", "--cacert", caFile, "--resolve", c.host+":"+p+":127.0.0.1", "https://"+c.host+":"+p+"/")
		cancel()
		reached := hits.Load() > 0
		if c.ok && (!reached || err != nil) {
			t.Errorf("%s: curl refused a permitted leaf: %v: %s", c.host, err, out)
		}
		if !c.ok && (reached || err == nil) {
			t.Errorf("%s: curl accepted a leaf outside the constraints: %s", c.host, out)
		}
	}
}
