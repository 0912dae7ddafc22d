package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestRotationOn401: the upstream accepts only the rotated token. The child
// rotates the file the credential is read from (standing in for a rotation
// in the backend), then calls the API: the proxy gets a 401 for the old
// value, re-resolves the credential, and replays the request with the new
// one, so the agent sees a 200.
func TestRotationOn401(t *testing.T) {
	const oldTok, newTok = "rotation-old-token-0001", "rotation-new-token-0002"
	var mu sync.Mutex
	var seen []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+" "+string(body))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+newTok {
			http.Error(w, "token expired", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "accepted "+string(body))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.TLSConfig = testCA.serverTLS()
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(oldTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`version: 1
credentials:
  - name: api
    secret: file:%s
    hosts: [api.example.test]
    inject: bearer
`, tokenFile)
	s := runSession(t, sessionOpts{
		config:  cfg,
		connect: []string{connectTo("api.example.test", 443, ln.Addr().(*net.TCPAddr).Port)},
		env:     map[string]string{"TOKEN_FILE": tokenFile},
		script: `printf '` + newTok + `\n' > "$TOKEN_FILE"
curl -sS --max-time 20 -d 'payload=1' -o "$OUT/body" -w '%{http_code}' https://api.example.test/v1 > "$OUT/status"
`,
	})
	if st := s.file("status"); st != "200" {
		t.Fatalf("child got %q, want 200 after rotation; stderr:\n%s", st, s.stderr)
	}
	if b := s.file("body"); b != "accepted payload=1" {
		t.Fatalf("body %q: the replay lost the request body", b)
	}
	mu.Lock()
	got := strings.Join(seen, " | ")
	mu.Unlock()
	if len(seen) != 2 || !strings.HasPrefix(seen[0], "Bearer "+oldTok) || !strings.HasPrefix(seen[1], "Bearer "+newTok) {
		t.Fatalf("upstream saw %q, want the old token then the new one", got)
	}
	recs := auditFind(s.audit, map[string]any{"host": "api.example.test", "retried": true})
	if len(recs) != 1 || fmt.Sprint(recs[0]["status"]) != "200" {
		t.Fatalf("audit records %v, want one retried 200", s.audit)
	}
	if !strings.Contains(s.stderr, "re-resolved") {
		t.Errorf("the summary does not mention the re-resolved credential:\n%s", s.stderr)
	}
	// The child wrote the new token itself (it plays the backend here); the
	// old one it never had.
	s.assertNoSecret(t, oldTok)
	for _, out := range []string{s.stdout, s.stderr, s.auditRaw} {
		if strings.Contains(out, newTok) {
			t.Error("agentvault's output or audit log carries the rotated token")
		}
	}
}
