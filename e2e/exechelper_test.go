package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecHelperEnvironment: an exec helper (which runs again whenever the
// agent provokes a 401 or a TTL expiry, while a same-user agent can read its
// /proc/<pid>/environ) gets PATH, HOME, USER, LANG, TMPDIR and what its
// backend declares, never the secrets other credentials read through env:;
// and the declared variable never reaches the agent.
func TestExecHelperEnvironment(t *testing.T) {
	envSecret := newSecret(t, "envref")
	helperSecret := newSecret(t, "helper")
	opToken := newSecret(t, "optoken")

	// The helper dumps its environment outside $OUT (the dump holds the
	// declared token, which is the helper's to see) and prints its secret.
	dumpDir := t.TempDir()
	dump := filepath.Join(dumpDir, "helper-env.txt")
	helper := writeFile(t, dumpDir, "helper.sh", fmt.Sprintf(`env > %q
printf '%%s\n' %q
`, dump, helperSecret))

	up := newUpstream(t, true)
	cfg := fmt.Sprintf(`version: 1
backends:
  op:
    type: exec
    command: [sh, %q]
    env: [OP_SERVICE_ACCOUNT_TOKEN]
credentials:
  - name: api
    secret: env:TEST_API_TOKEN
    hosts: [api.example.test]
    inject: bearer
    env: [API_TOKEN]
  - name: vaulted
    secret: op:op://vault/item/field
    hosts: [other.example.test]
    inject: bearer
`, helper)
	s := runSession(t, sessionOpts{
		config: cfg,
		env: map[string]string{
			"TEST_API_TOKEN": envSecret, "OP_SERVICE_ACCOUNT_TOKEN": opToken,
			"USER": "e2e-user", "LANG": "C.UTF-8", "TMPDIR": os.TempDir(),
		},
		connect: []string{connectTo("other.example.test", 443, up.Port)},
		script:  curlTo("echo", "https://other.example.test/echo"),
	})
	if s.code != 0 {
		t.Fatalf("exit %d, want 0", s.code)
	}
	if got := onlyOne(t, up, "/echo").Header.Get("Authorization"); got != "Bearer "+helperSecret {
		t.Errorf("upstream did not get the helper's secret (Authorization %d bytes)", len(got))
	}

	helperEnv := parseEnvFile(readFileOr(dump, ""))
	if len(helperEnv) == 0 {
		t.Fatal("the helper left no environment dump")
	}
	t.Run("helper sees no other secret", func(t *testing.T) {
		raw := readFileOr(dump, "")
		for _, form := range secretForms(envSecret) {
			if strings.Contains(raw, form) {
				t.Errorf("the helper's environment holds the env: reference's secret (form %.6s...)", form)
			}
		}
		// A shell adds PWD, SHLVL and _ on its own; anything else came from agentvault.
		allowed := map[string]bool{"PATH": true, "HOME": true, "USER": true, "LANG": true, "TMPDIR": true,
			"OP_SERVICE_ACCOUNT_TOKEN": true, "PWD": true, "OLDPWD": true, "SHLVL": true, "_": true}
		for k := range helperEnv {
			if !allowed[k] {
				t.Errorf("the helper got %s from agentvault's environment", k)
			}
		}
	})
	t.Run("helper sees the base and declared variables", func(t *testing.T) {
		want := map[string]string{"OP_SERVICE_ACCOUNT_TOKEN": opToken, "USER": "e2e-user", "LANG": "C.UTF-8",
			"TMPDIR": os.TempDir(), "PATH": os.Getenv("PATH")}
		for k, v := range want {
			if helperEnv[k] != v {
				t.Errorf("helper's %s = %q, want %q", k, helperEnv[k], v)
			}
		}
		if helperEnv["HOME"] == "" {
			t.Error("helper's HOME is not set")
		}
	})
	t.Run("declared variable withheld from the agent", func(t *testing.T) {
		if v, ok := s.childEnv["OP_SERVICE_ACCOUNT_TOKEN"]; ok {
			t.Errorf("the agent got OP_SERVICE_ACCOUNT_TOKEN (%d bytes)", len(v))
		}
		if _, ok := s.childEnv["TEST_API_TOKEN"]; ok {
			t.Error("the agent got TEST_API_TOKEN")
		}
	})
	s.assertNoSecret(t, envSecret, helperSecret, opToken)
}
