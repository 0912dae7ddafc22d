package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agentvault/agentvault/internal/testsupport"
)

// The proxy's cost is measured against a direct connection in the same run:
// go test -bench . -run XXX ./proxy/ reports both; compare their ns/op.
func benchUpstream(b *testing.B) (*testsupport.CA, string) {
	up := newTestCA(b, "upstream")
	payload := strings.Repeat("x", 1024)
	srv, _ := upstream(b, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, payload)
	}), "api.example.test")
	return up, hostPortOf(srv)
}

func runGets(b *testing.B, c *http.Client, url string) {
	run(b, func() (*http.Response, error) { return c.Get(url) })
}

// run does b.N requests and checks each got the upstream's 1 KiB.
func run(b *testing.B, do func() (*http.Response, error)) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := do()
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || n != 1024 {
			b.Fatalf("status %d, %d bytes", res.StatusCode, n)
		}
	}
}

func BenchmarkDirectGET(b *testing.B) {
	up, addr := benchUpstream(b)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: up.Pool, ServerName: "api.example.test"}}}
	runGets(b, c, "https://"+addr+"/")
}

func BenchmarkProxyInjectGET(b *testing.B) {
	up, addr := benchUpstream(b)
	cred := &Credential{Name: "api", Placeholder: "PH-0000000000", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(b, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": addr})
	runGets(b, h.client(testPassword, nil), "https://api.example.test/")
}

// An agent's usual request is a POST with a JSON body (a model call): it
// goes through the proxy's transport, not its pool (pool.go).
func runPosts(b *testing.B, c *http.Client, url string) {
	body := strings.Repeat("x", 4096)
	run(b, func() (*http.Response, error) { return c.Post(url, "application/json", strings.NewReader(body)) })
}

func BenchmarkDirectPOST(b *testing.B) {
	up, addr := benchUpstream(b)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: up.Pool, ServerName: "api.example.test"}}}
	runPosts(b, c, "https://"+addr+"/")
}

func BenchmarkProxyInjectPOST(b *testing.B) {
	up, addr := benchUpstream(b)
	cred := &Credential{Name: "api", Placeholder: "PH-0000000000", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(b, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": addr})
	runPosts(b, h.client(testPassword, nil), "https://api.example.test/")
}

func BenchmarkProxyTunnelGET(b *testing.B) {
	up, addr := benchUpstream(b)
	h := startProxy(b, up, nil, Egress{}, map[string]string{"api.example.test:443": addr})
	runGets(b, h.client(testPassword, up.Pool), "https://api.example.test/")
}

// BenchmarkRedactorStream is the reflection guard on a streamed download:
// 16 KiB reads (one TLS record each) of text that holds no secret.
func BenchmarkRedactorStream(b *testing.B) {
	pol, err := compilePolicy([]*Credential{{Name: "api", Hosts: []string{"api.example.test"}, Secret: staticSecret(secret)}}, Egress{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := newMatcher(pol.creds, reflectForms)
	chunk := []byte(strings.Repeat("some text of a response, nothing secret in it\n", 16<<10/47))
	const total = 8 << 20
	b.SetBytes(total)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		src := io.NopCloser(io.LimitReader(&repeatReader{chunk: chunk}, total))
		if _, err := io.Copy(io.Discard, newRedactor(src, m, func() {})); err != nil {
			b.Fatal(err)
		}
	}
}

// repeatReader returns chunk on every read.
type repeatReader struct{ chunk []byte }

func (r *repeatReader) Read(p []byte) (int, error) { return copy(p, r.chunk), nil }
