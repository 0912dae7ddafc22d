package proxy

import (
	"bytes"
	"compress/gzip"
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

// BenchmarkLeakGzipStreamedBody is the leak guard on a gzip body of unknown
// length that decodes to 8 MiB: the decoding and the hold-back of
// compressed bytes (SetBytes counts the decoded bytes).
func BenchmarkLeakGzipStreamedBody(b *testing.B) {
	p := leakBenchProxy()
	var plain bytes.Buffer
	for plain.Len() < 8<<20 {
		plain.Write(leakBenchBody)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(plain.Bytes())
	w.Close()
	b.SetBytes(int64(plain.Len()))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("POST", "https://b.test/upload", nil)
		req.Header.Set("Content-Encoding", "gzip")
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(gz.Bytes())), -1
		if res := p.checkLeak(req, "b.test", 443, &exchange{}); res != nil {
			b.Fatal("refused")
		}
		if n, err := io.Copy(io.Discard, req.Body); err != nil || n != int64(gz.Len()) {
			b.Fatal(n, err)
		}
	}
}
