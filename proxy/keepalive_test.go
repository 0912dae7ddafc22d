package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestStreamedResponsesKeepTheConnection: responses the proxy must stream
// (chunked, gzip it decodes for the reflection guard, large unknown-length
// bodies) arrive whole and in order, and consecutive ones share one client
// connection: one TLS handshake with the proxy, not one per response.
func TestStreamedResponsesKeepTheConnection(t *testing.T) {
	big := make([]byte, 3<<20)
	rand.Read(big)
	bigSum := sha256.Sum256(big)
	text := bytes.Repeat([]byte("some text the agent asked for\n"), 200)
	up := newTestCA(t, "upstream")
	srv, _ := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			zw.Write(text)
			zw.Close()
		case "/chunked":
			w.Write(text[:100])
			w.(http.Flusher).Flush()
			w.Write(text[100:])
		case "/big":
			for off := 0; off < len(big); off += 100000 {
				w.Write(big[off:min(off+100000, len(big))])
				w.(http.Flusher).Flush()
			}
		}
	}), "api.example.test")
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	var handshakes atomic.Int32
	c := h.client(testPassword, nil)
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: h.session.Pool, VerifyConnection: func(tls.ConnectionState) error {
		handshakes.Add(1)
		return nil
	}}
	for _, path := range []string{"/gzip", "/chunked", "/gzip", "/big", "/chunked", "/big", "/gzip"} {
		res, err := c.Get("https://api.example.test" + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%s: status %d, %v", path, res.StatusCode, err)
		}
		switch path {
		case "/big":
			if sha256.Sum256(body) != bigSum {
				t.Fatalf("%s: body corrupted (%d bytes)", path, len(body))
			}
		default:
			if !bytes.Equal(body, text) {
				t.Fatalf("%s: body %d bytes, want %d", path, len(body), len(text))
			}
		}
	}
	if n := handshakes.Load(); n != 1 {
		t.Fatalf("%d TLS handshakes with the proxy for 7 responses on a keep-alive client, want 1", n)
	}
	if n := len(h.waitRecords(t, 7)); n != 7 {
		t.Fatalf("%d records", n)
	}
}
