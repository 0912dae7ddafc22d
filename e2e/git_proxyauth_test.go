package e2e

import (
	"testing"
)

// TestGitFirstConnectAuthenticated: git (libcurl) by default sends its first
// CONNECT without the proxy password and retries after the 407, so every git
// operation would start with an auth_failed record. The child's environment
// makes it send the password at once: a clone leaves no auth_failed record.
func TestGitFirstConnectAuthenticated(t *testing.T) {
	needBinary(t)
	needTestTool(t, "git")
	secret := newSecret(t, "git")
	g := newGitServer(t, secret)
	home := t.TempDir()
	writeGitHome(t, home)
	cfg := `version: 1
credentials:
  - name: git
    secret: env:TEST_GIT_TOKEN
    hosts: [git.example.test]
    inject: {type: basic, username: x-access-token}
`
	s := runSession(t, sessionOpts{
		config: cfg,
		env: map[string]string{"TEST_GIT_TOKEN": secret, "HOME": home,
			"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"},
		connect: []string{connectTo("git.example.test", 443, g.Port)},
		script:  `git clone -q https://git.example.test/repo.git "$OUT/clone" 2> "$OUT/clone.err"` + "\n",
	})
	if s.code != 0 {
		t.Fatalf("exit %d; clone: %s", s.code, s.file("clone.err"))
	}
	if s.file("clone/README") != "seed\n" {
		t.Errorf("clone has no README: %s", s.file("clone.err"))
	}
	if got := auditFind(s.audit, map[string]any{"action": "auth_failed"}); len(got) != 0 {
		t.Errorf("git's CONNECT was refused for a missing proxy password %d times:\n%s", len(got), s.auditRaw)
	}
	if len(auditFind(s.audit, map[string]any{"action": "inject", "host": "git.example.test"})) == 0 {
		t.Errorf("no inject record for the clone:\n%s", s.auditRaw)
	}
	s.assertNoSecret(t, secret)
}
