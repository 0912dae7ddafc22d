package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// agentHosts are the real hosts the agent CLIs' presets are bound to; the
// test upstream stands in for all of them through --connect-to.
var agentHosts = []string{"api.anthropic.com", "api.openai.com", "chatgpt.com", "generativelanguage.googleapis.com"}

// newAgentUpstream is an HTTPS upstream for agentHosts with its own test CA
// (the harness's CA does not name them), returned with that CA's PEM path
// for --upstream-ca.
func newAgentUpstream(t *testing.T) (*upstream, string) {
	t.Helper()
	pemPath := filepath.Join(t.TempDir(), "agents-ca.pem")
	ca, err := newTestAuthority(pemPath, agentHosts...)
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{sseWrites: map[string][]int64{}, uploaded: map[string]int64{}}
	u.Port = serveTLS(t, u, ca.serverTLS())
	return u, pemPath
}

// randomToken is prefix plus n characters drawn from alphabet (a slight
// modulo bias is harmless here).
func randomToken(t *testing.T, prefix, alphabet string, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

const (
	alnum  = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b64url = alnum + "-_"
)

// TestZeroConfigAgentVariables: with no config file, the variables Claude
// Code, codex and gemini-cli read their keys from reach the child only as
// placeholders of the real token's format, only in the variables that were
// set; the upstream gets the real value; the banner names the other
// credential-like variables, never a value.
func TestZeroConfigAgentVariables(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	jwtHead := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"user-1","exp":4102444800}`)) + "."
	type variable struct {
		name, real, format string
		header, scheme     string // the header the child sends it in ("" = no request), "Bearer " or ""
		host, path         string
	}
	oauth := randomToken(t, "sk-ant-oat01-", b64url, 95)
	bearer := randomToken(t, "", alnum, 48)
	codex := randomToken(t, "sk-proj-", b64url, 156)
	gemini := randomToken(t, "AIza", b64url, 35)
	vars := []variable{
		{"CLAUDE_CODE_OAUTH_TOKEN", oauth, `^sk-ant-oat01-agentvault[A-Za-z0-9_-]{85}$`,
			"Authorization", "Bearer ", "api.anthropic.com", "/ok/oauth"},
		{"ANTHROPIC_AUTH_TOKEN", bearer, `^agentvault[A-Za-z0-9]{38}$`,
			"Authorization", "Bearer ", "api.anthropic.com", "/ok/bearer"},
		{"CODEX_API_KEY", codex, `^sk-proj-agentvault[A-Za-z0-9_-]{146}$`,
			"Authorization", "Bearer ", "chatgpt.com", "/ok/codex"},
		{"GEMINI_API_KEY", gemini, `^AIzaagentvault[A-Za-z0-9_-]{25}$`,
			"X-Goog-Api-Key", "", "generativelanguage.googleapis.com", "/ok/gemini"},
		{"CODEX_ACCESS_TOKEN", jwtHead + randomToken(t, "", b64url, 342),
			`^` + regexp.QuoteMeta(jwtHead) + `agentvault[A-Za-z0-9_-]{332}$`, "", "", "", ""},
		{"GITHUB_TOKEN", randomToken(t, "ghp_", alnum, 36), `^ghp_agentvault[A-Za-z0-9]{26}$`, "", "", "", ""},
		{"SLACK_BOT_TOKEN", "xoxb-1234567890-1234567890123-" + randomToken(t, "", alnum, 24),
			`^xoxb-[0-9]{10}-[0-9]{13}-agentvault[A-Za-z0-9]{14}$`, "", "", "", ""},
	}
	sentry := newSecret(t, "sentry")
	dbPass := newSecret(t, "dbpass")
	stray := randomToken(t, "glpat-", alnum, 20)
	env := map[string]string{"SENTRY_AUTH_TOKEN": sentry, "MY_DB_PASSWORD": dbPass, "STRAY": stray}
	var script strings.Builder
	for _, v := range vars {
		env[v.name] = v.real
		if v.header != "" {
			script.WriteString(curlTo(v.name, "https://"+v.host+v.path, `-H "`+v.header+`: `+v.scheme+`$`+v.name+`"`))
		}
	}
	up, agentCA := newAgentUpstream(t)
	var connect []string
	for _, h := range agentHosts {
		connect = append(connect, connectTo(h, 443, up.Port))
	}
	s := runSession(t, sessionOpts{
		env: env, connect: connect, flags: []string{"--upstream-ca", agentCA}, script: script.String(),
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	var secrets, placeholders []string
	for _, v := range vars {
		ph := s.placeholder(t, v.name)
		placeholders = append(placeholders, ph)
		secrets = append(secrets, v.real)
		if !regexp.MustCompile(v.format).MatchString(ph) || len(ph) != len(v.real) {
			t.Errorf("%s: placeholder %q is not shaped like the real token (%s, length %d)", v.name, ph, v.format, len(v.real))
		}
		if v.header == "" {
			continue
		}
		s.response(t, v.name, "200")
		if got := onlyOne(t, up, v.path).Header.Get(v.header); got != v.scheme+v.real {
			t.Errorf("%s: upstream got %s %q, want the real value", v.name, v.header, redact(got, v.real, ph))
		}
	}
	// Only the variables that were set: gemini-cli warns when both are.
	for _, unset := range []string{"GOOGLE_API_KEY", "GH_TOKEN", "SLACK_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"} {
		if v, ok := s.childEnv[unset]; ok {
			t.Errorf("%s was not set but the child has it (%d characters)", unset, len(v))
		}
	}
	s.assertNoSecret(t, secrets...)
	s.assertNoPlaceholder(t, placeholders...)

	// The rest reach the child unprotected, and the banner says so by name.
	warning := ""
	for _, line := range strings.Split(s.stderr, "\n") {
		if strings.Contains(line, "unprotected") && strings.HasPrefix(line, "agentvault: warning:") {
			warning = line
		}
	}
	for _, name := range []string{"MY_DB_PASSWORD", "SENTRY_AUTH_TOKEN", "STRAY"} {
		if !strings.Contains(warning, name) {
			t.Errorf("banner warning %q does not name %s", warning, name)
		}
	}
	for _, protected := range []string{"CLAUDE_CODE_OAUTH_TOKEN", "CODEX_API_KEY", "GITHUB_TOKEN", "OUT"} {
		if strings.Contains(warning, protected) {
			t.Errorf("banner warning names %s, which is protected or no credential", protected)
		}
	}
	for _, value := range []string{sentry, dbPass, stray} {
		if strings.Contains(s.stderr, value) || strings.Contains(s.stdout, value) || strings.Contains(s.auditRaw, value) {
			t.Error("agentvault printed the value of an unprotected variable")
		}
	}
	if s.childEnv["STRAY"] != stray {
		t.Error("an unprotected variable did not reach the child as it was (it is only named, not changed)")
	}
}

// TestZeroConfigStrictUnprotected: --strict in zero-config mode refuses to
// start while a credential-like variable would reach the command unprotected
// (exit 78, naming it, the command never runs); without --strict, or with a
// config file the user chose, the command runs and the banner warns.
func TestZeroConfigStrictUnprotected(t *testing.T) {
	needBinary(t)
	tests := []struct {
		name     string
		config   string
		flags    []string
		variable string // credential-like, unprotected; "" = none
		value    string // "" = a fresh secret
		env      map[string]string
		wantCode int
	}{
		{"zero-config strict refuses", "", []string{"--strict"}, "SENTRY_AUTH_TOKEN", "", nil, 78},
		{"zero-config strict refuses a known token prefix", "", []string{"--strict"}, "SOMEVAR", "xoxp-" + strings.Repeat("1", 30), nil, 78},
		{"zero-config warns", "", nil, "SENTRY_AUTH_TOKEN", "", nil, 0},
		{"a config file under strict warns", apiConfig, []string{"--strict"}, "SENTRY_AUTH_TOKEN", "", map[string]string{"TEST_API_TOKEN": "t"}, 0},
		{"zero-config strict with everything protected runs", "", []string{"--strict"}, "", "", map[string]string{"GH_TOKEN": "ghp_" + strings.Repeat("a", 36)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = v
			}
			value := tt.value
			if value == "" {
				value = newSecret(t, "unprotected")
			}
			if tt.variable != "" {
				env[tt.variable] = value
			}
			s := runSession(t, sessionOpts{config: tt.config, env: env, flags: tt.flags, script: `touch "$OUT/ran"`})
			if s.code != tt.wantCode {
				t.Errorf("exit %d, want %d", s.code, tt.wantCode)
			}
			_, err := os.Stat(filepath.Join(s.out, "ran"))
			if ran := err == nil; ran != (tt.wantCode == 0) {
				t.Errorf("command ran: %v, want %v", ran, tt.wantCode == 0)
			}
			if named := strings.Contains(s.stderr, "unprotected: "+tt.variable+";"); named != (tt.variable != "") {
				t.Errorf("stderr names %q as unprotected: %v\n%s", tt.variable, named, s.stderr)
			}
			if tt.variable == "" && strings.Contains(s.stderr, "unprotected") {
				t.Errorf("a warning with nothing unprotected:\n%s", s.stderr)
			}
			if tt.wantCode == 78 && !strings.Contains(s.stderr, "--strict: refusing to start") {
				t.Errorf("the refusal does not say why:\n%s", s.stderr)
			}
			if tt.wantCode == 78 && strings.Contains(s.stderr, "exit 0") {
				t.Errorf("a summary claims an exit status the command never had:\n%s", s.stderr)
			}
			if tt.variable != "" && (strings.Contains(s.stderr, value) || strings.Contains(s.auditRaw, value)) {
				t.Error("the value of the unprotected variable was printed")
			}
		})
	}
}
