package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// leakBenchBody is a request body without a secret: JSON text of the kind
// an agent uploads.
var leakBenchBody = []byte(strings.Repeat(`{"role":"user","content":"some text of a request, nothing secret in it"},`+"\n", 64<<10/74))

func leakBenchProxy() *Proxy {
	return &Proxy{policy: &policy{creds: []*credential{testCred("a", secret, "PH-a", "a.test")}}}
}

// BenchmarkLeakSmallBody is the leak guard on a 64 KiB body of known length
// headed to a host the secret is not bound to: the common path, no
// Content-Encoding.
func BenchmarkLeakSmallBody(b *testing.B) {
	p := leakBenchProxy()
	b.SetBytes(int64(len(leakBenchBody)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("POST", "https://b.test/upload?q=1", bytes.NewReader(leakBenchBody))
		req.Header.Set("Content-Type", "application/json")
		if res := p.checkLeak(req, "b.test", 443, &exchange{}); res != nil {
			b.Fatal("refused")
		}
		io.Copy(io.Discard, req.Body)
	}
}

// BenchmarkLeakStreamedBody is the leak guard on an 8 MiB body of unknown
// length, no Content-Encoding.
func BenchmarkLeakStreamedBody(b *testing.B) {
	p := leakBenchProxy()
	const total = 8 << 20
	b.SetBytes(total)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("POST", "https://b.test/upload", nil)
		req.Body, req.ContentLength = io.NopCloser(io.LimitReader(&repeatReader{chunk: leakBenchBody[:16<<10]}, total)), -1
		if res := p.checkLeak(req, "b.test", 443, &exchange{}); res != nil {
			b.Fatal("refused")
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			b.Fatal(err)
		}
	}
}
