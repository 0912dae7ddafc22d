package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck: one row per credential with "ok", never the value; a missing
// env var is exit 69 naming the credential.
func TestCheck(t *testing.T) {
	needBinary(t)
	secret := newSecret(t, "api")
	dir := t.TempDir()
	cfg := apiConfig + `  - name: second
    secret: env:TEST_SECOND_TOKEN
    hosts: [other.example.test]
    inject: {type: header, name: X-Api-Key}
`
	path := writeFile(t, dir, "agentvault.yaml", cfg)
	both := map[string]string{"TEST_API_TOKEN": secret, "TEST_SECOND_TOKEN": secret + "-2"}
	// A discovered ./agentvault.yaml is used once trusted (trust_test.go).
	home := t.TempDir()
	if _, stderr, code := runIn(t, dir, map[string]string{"HOME": home}, "trust"); code != 0 {
		t.Fatalf("trust: exit %d: %s", code, stderr)
	}
	trusted := map[string]string{"HOME": home}
	for k, v := range both {
		trusted[k] = v
	}

	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		dir      string
		want     int
		okRows   []string // credentials whose row must say ok
		badNames []string // credentials that must be named as failing
	}{
		{name: "all resolve", env: both, args: []string{"check", "-c", path}, want: 0, okRows: []string{"api", "second"}},
		{name: "long flag", env: both, args: []string{"check", "--config", path}, want: 0, okRows: []string{"api", "second"}},
		{name: "./agentvault.yaml found", env: trusted, args: []string{"check"}, dir: dir, want: 0, okRows: []string{"api", "second"}},
		{name: "AGENTVAULT_CONFIG", env: map[string]string{"TEST_API_TOKEN": secret, "TEST_SECOND_TOKEN": "x",
			"AGENTVAULT_CONFIG": path}, args: []string{"check"}, want: 0, okRows: []string{"api", "second"}},
		{name: "one missing", env: map[string]string{"TEST_API_TOKEN": secret}, args: []string{"check", "-c", path},
			want: 69, okRows: []string{"api"}, badNames: []string{"second"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := runIn(t, c.dir, c.env, c.args...)
			all := stdout + stderr
			if code != c.want {
				t.Errorf("exit %d, want %d", code, c.want)
			}
			for _, name := range c.okRows {
				if !hasRow(stdout, name, "ok") {
					t.Errorf("no row for %q saying ok:\n%s", name, stdout)
				}
			}
			for _, name := range c.badNames {
				if !strings.Contains(all, name) || hasRow(all, name, "ok") {
					t.Errorf("credential %q not reported as failing:\n%s", name, all)
				}
			}
			for _, v := range []string{secret, b64(secret)} {
				if strings.Contains(all, v) {
					t.Error("check printed a secret value")
				}
			}
		})
	}
}

// TestCheckOTLPHeaders: check reports a collector header whose variable is
// unset as run would (exit 78), naming the variable, never a value.
func TestCheckOTLPHeaders(t *testing.T) {
	needBinary(t)
	secret := newSecret(t, "api")
	token := newSecret(t, "collector")
	path := writeFile(t, t.TempDir(), "agentvault.yaml", `version: 1
credentials:
  - name: api
    secret: env:TEST_API_TOKEN
    hosts: [api.example.test]
audit:
  otlp:
    endpoint: https://collector.example.test:4318
    headers:
      Authorization: Bearer ${TEST_COLLECTOR_TOKEN}
`)
	clear := writeFile(t, t.TempDir(), "agentvault.yaml", strings.Replace(readFileOr(path, ""), "https://", "http://", 1))
	for _, c := range []struct {
		name string
		path string
		env  map[string]string
		want int
		line string
	}{
		{"variable set", path, map[string]string{"TEST_API_TOKEN": secret, "TEST_COLLECTOR_TOKEN": token}, 0, "audit export (audit.otlp): ok"},
		{"variable unset", path, map[string]string{"TEST_API_TOKEN": secret}, 78, "TEST_COLLECTOR_TOKEN"},
		// run refuses headers over http:// in host mode; check says so.
		{"headers in clear", clear, map[string]string{"TEST_API_TOKEN": secret, "TEST_COLLECTOR_TOKEN": token}, 0, "run refuses that without --isolate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := run(t, c.env, "check", "-c", c.path)
			if code != c.want || !strings.Contains(stdout+stderr, c.line) {
				t.Errorf("exit %d (want %d), output lacks %q:\n%s%s", code, c.want, c.line, stdout, stderr)
			}
			if strings.Contains(stdout+stderr, token) || strings.Contains(stdout+stderr, secret) {
				t.Error("check printed a secret value")
			}
		})
	}
}

// hasRow: some line names the credential (as a word) and contains want.
func hasRow(text, name, want string) bool {
	for _, line := range strings.Split(text, "\n") {
		words := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '|' || r == ',' })
		hasName, hasWant := false, false
		for _, w := range words {
			hasName = hasName || w == name
			hasWant = hasWant || strings.EqualFold(strings.Trim(w, ":✓✔()[]"), want)
		}
		if hasName && hasWant {
			return true
		}
	}
	return false
}

func TestPresets(t *testing.T) {
	needBinary(t)
	stdout, stderr, code := run(t, nil, "presets")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"anthropic", "openai", "github", "gitlab", "gemini", "huggingface", "slack",
		"stripe", "npm", "openrouter", "mistral", "groq", "api.anthropic.com", "ANTHROPIC_API_KEY", "api.github.com"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("presets output lacks %q", want)
		}
	}
}

func TestInit(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agentvault.yaml")
	env := map[string]string{"HOME": t.TempDir()} // init trusts what it writes, for this user
	if _, stderr, code := runIn(t, dir, env, "init"); code != 0 {
		t.Fatalf("first init: exit %d: %s", code, stderr)
	}
	first := readFileOr(cfg, "")
	if !strings.Contains(first, "version: 1") || !strings.Contains(first, "#") {
		t.Errorf("starter config lacks version: 1 or comments:\n%s", first)
	}

	// A user's edits must survive a second init.
	edited := first + "\n# my edit\n"
	if err := os.WriteFile(cfg, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runIn(t, dir, env, "init")
	if code == 0 {
		t.Error("second init without --force succeeded")
	}
	if !strings.Contains(stderr, "--force") && !strings.Contains(stderr, "exists") {
		t.Errorf("refusal does not say why: %s", stderr)
	}
	if readFileOr(cfg, "") != edited {
		t.Error("second init changed the file")
	}

	if _, stderr, code := runIn(t, dir, env, "init", "--force", "--preset", "github", "--preset", "anthropic"); code != 0 {
		t.Fatalf("init --force: exit %d: %s", code, stderr)
	}
	forced := readFileOr(cfg, "")
	if forced == edited || !strings.Contains(forced, "github") || !strings.Contains(forced, "anthropic") {
		t.Errorf("init --force --preset github --preset anthropic wrote:\n%s", forced)
	}

	// The starter parses: check may fail to resolve (69), never on syntax (78).
	_, stderr, code = runIn(t, dir, env, "check")
	if code != 0 && code != 69 {
		t.Errorf("check on the starter config: exit %d: %s", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	needBinary(t)
	stdout, stderr, code := run(t, nil, "version")
	if code != 0 || strings.TrimSpace(stdout) == "" {
		t.Errorf("version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
