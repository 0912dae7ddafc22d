package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProxyRequiresPassword probes the live proxy by hand while a child
// waits: without the session password every request gets a 407.
func TestProxyRequiresPassword(t *testing.T) {
	needBinary(t)
	secret := newSecret(t, "api")
	up := newUpstream(t, true)
	work := t.TempDir()
	out := filepath.Join(work, "out")
	os.Mkdir(out, 0o755)
	audit := filepath.Join(work, "audit.jsonl")
	// The child publishes the proxy URL, then waits (bounded) for "done".
	script := `echo "$HTTPS_PROXY" > "$OUT/proxy.tmp" && mv "$OUT/proxy.tmp" "$OUT/proxy.url"
i=0; while [ ! -f "$OUT/done" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done`
	p := startAV(t, "", map[string]string{"TEST_API_TOKEN": secret, "OUT": out},
		"run", "-c", writeFile(t, work, "agentvault.yaml", apiConfig),
		"--upstream-ca", testCA.PEMPath, "--audit-log", audit,
		"--connect-to", connectTo("api.example.test", 443, up.Port),
		"--", "sh", "-c", script)
	proxyURL := waitForFile(t, filepath.Join(out, "proxy.url"), 15*time.Second)
	u, err := url.Parse(proxyURL)
	if err != nil || u.User == nil {
		t.Fatalf("child's HTTPS_PROXY %q has no credentials", proxyURL)
	}
	if u.Hostname() != "127.0.0.1" {
		t.Errorf("proxy listens on %q, want 127.0.0.1", u.Hostname())
	}
	pass, _ := u.User.Password()
	bare := "http://" + u.Host

	cases := []struct {
		name, method, target, userpass string
		want                           int
	}{
		{"CONNECT without password", "CONNECT", "api.example.test:443", "", 407},
		{"CONNECT with wrong password", "CONNECT", "api.example.test:443", "agentvault:wrong-" + pass, 407},
		{"CONNECT with wrong user", "CONNECT", "api.example.test:443", "someone:" + pass, 407},
		{"plain GET without password", "GET", "http://api.example.test/echo/noauth", "", 407},
		{"CONNECT with the session password", "CONNECT", "api.example.test:443", u.User.Username() + ":" + pass, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := rawProxyRequest(t, bare, c.method, c.target, c.userpass)
			if res.StatusCode != c.want {
				t.Errorf("status %d, want %d", res.StatusCode, c.want)
			}
			if c.want == 407 && !strings.HasPrefix(res.Header.Get("Proxy-Authenticate"), "Basic") {
				t.Errorf("407 without a Basic Proxy-Authenticate: %v", res.Header)
			}
		})
	}
	os.WriteFile(filepath.Join(out, "done"), nil, 0o644)
	if _, _, code := p.wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("upstream got %d requests from unauthenticated probes: %v", n, paths(up.requests()))
	}
	auditRaw := readFileOr(audit, "")
	if recs := auditFind(parseJSONLines(t, auditRaw), map[string]any{"action": "auth_failed"}); len(recs) < 4 {
		t.Errorf("audit log has %d auth_failed records, want 4:\n%s", len(recs), auditRaw)
	}
	if strings.Contains(auditRaw, pass) {
		t.Error("audit log holds the session password")
	}
}

// TestEgressPolicy: --strict / egress.deny refuse a host with 403 and a
// "deny" record; --allow opens a plain tunnel that never carries a secret.
func TestEgressPolicy(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	cases := []struct {
		name       string
		flags      []string
		extraCfg   string
		otherAllow bool // other.example.test reachable
	}{
		{name: "strict", flags: []string{"--strict"}},
		{name: "strict with --allow", flags: []string{"--strict", "--allow", "other.example.test"}, otherAllow: true},
		{name: "config deny", extraCfg: "egress:\n  deny: [other.example.test]\n"},
		{name: "config default deny", extraCfg: "egress:\n  default: deny\n"},
		{name: "config default deny with allow", extraCfg: "egress:\n  default: deny\n  allow: [other.example.test]\n", otherAllow: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			secret := newSecret(t, "api")
			up := newUpstream(t, true)
			other := `curl -sS --max-time 20 -H "Authorization: Bearer $API_TOKEN" -o "$OUT/other.body" ` +
				`-w '%{http_connect} %{http_code}' https://other.example.test/ok/other > "$OUT/other.status" 2> "$OUT/other.err"` + "\n"
			s := runSession(t, sessionOpts{
				config: apiConfig + c.extraCfg,
				env:    map[string]string{"TEST_API_TOKEN": secret},
				flags:  c.flags,
				connect: []string{connectTo("api.example.test", 443, up.Port),
					connectTo("other.example.test", 443, up.Port)},
				script: other + curlTo("api", "https://api.example.test/ok/api"),
			})
			if s.code != 0 {
				t.Fatalf("exit %d", s.code)
			}
			ph := s.placeholder(t, "API_TOKEN")
			// The credential's own host stays reachable under default deny.
			if got := onlyOne(t, up, "/ok/api"); got.Header.Get("Authorization") != "Bearer "+secret {
				t.Errorf("api.example.test: Authorization %q", redact(got.Header.Get("Authorization"), secret, ph))
			}
			st := strings.Fields(s.file("other.status"))
			if c.otherAllow {
				if len(st) != 2 || st[1] != "200" {
					t.Errorf("allowed other.example.test: curl connect/http status %v (%s)", st, s.file("other.err"))
				}
				got := onlyOne(t, up, "/ok/other")
				if got.Header.Get("Authorization") != "Bearer "+ph {
					t.Errorf("other.example.test got Authorization %q, want the placeholder untouched",
						redact(got.Header.Get("Authorization"), secret, ph))
				}
				if len(auditFind(s.audit, map[string]any{"action": "tunnel", "host": "other.example.test"})) != 1 {
					t.Errorf("want one tunnel record for other.example.test:\n%s", s.auditRaw)
				}
			} else {
				if len(st) == 0 || st[0] != "403" {
					t.Errorf("denied other.example.test: curl connect/http status %v, want CONNECT 403", st)
				}
				if n := len(up.find("/ok/other")); n != 0 {
					t.Errorf("denied host reached the upstream %d times", n)
				}
				if len(auditFind(s.audit, map[string]any{"action": "deny", "host": "other.example.test"})) == 0 {
					t.Errorf("no deny record for other.example.test:\n%s", s.auditRaw)
				}
			}
			s.assertNoSecret(t, secret)
			s.assertNoPlaceholder(t, ph)
		})
	}
}

// TestPlainHTTP: a credentialed host over http:// is refused and the
// upstream sees nothing; another host over http:// is forwarded without a
// secret and without the proxy password.
func TestPlainHTTP(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	secret := newSecret(t, "api")
	plain := newUpstream(t, false)
	s := runSession(t, sessionOpts{
		config: apiConfig,
		env:    map[string]string{"TEST_API_TOKEN": secret},
		connect: []string{connectTo("api.example.test", 80, plain.Port),
			connectTo("other.example.test", 80, plain.Port)},
		script: curlTo("cred", "http://api.example.test/ok/plain-cred", `-H "Authorization: Bearer $API_TOKEN"`) +
			curlTo("other", "http://other.example.test/ok/plain-other", `-H "Authorization: Bearer $API_TOKEN"`),
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	ph := s.placeholder(t, "API_TOKEN")
	if st, _ := strconv.Atoi(strings.TrimSpace(s.file("cred.status"))); st < 400 {
		t.Errorf("http://api.example.test: status %d, want a refusal", st)
	}
	if n := len(plain.find("/ok/plain-cred")); n != 0 {
		t.Errorf("credentialed host over plain HTTP reached the upstream %d times", n)
	}
	s.response(t, "other", "200")
	got := onlyOne(t, plain, "/ok/plain-other")
	if got.Header.Get("Authorization") != "Bearer "+ph {
		t.Errorf("plain HTTP to other.example.test: Authorization %q, want the placeholder untouched",
			redact(got.Header.Get("Authorization"), secret, ph))
	}
	if v := got.Header.Get("Proxy-Authorization"); v != "" {
		t.Errorf("Proxy-Authorization forwarded upstream over plain HTTP")
	}
	for _, r := range s.audit {
		if r["host"] == "api.example.test" && r["action"] == "inject" {
			t.Errorf("audit: a plain-HTTP request was injected: %v", r)
		}
	}
	s.assertNoSecret(t, secret)
	s.assertNoPlaceholder(t, ph)
}

// waitForFile polls (bounded) until path exists and returns its content.
func waitForFile(t *testing.T, path string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within %v", path, limit)
	return ""
}
