package e2e

import (
	"testing"
)

// TestGitCloneAndPush: git (libcurl-gnutls, GIT_SSL_CAINFO, proxy password
// only after a 407) clones and pushes with Basic x-access-token injected.
func TestGitCloneAndPush(t *testing.T) {
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
    env: [GIT_TOKEN]
`
	s := runSession(t, sessionOpts{
		config: cfg,
		env: map[string]string{"TEST_GIT_TOKEN": secret, "HOME": home,
			"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"},
		connect: []string{connectTo("git.example.test", 443, g.Port)},
		script: `set -e
git clone -q https://git.example.test/repo.git "$OUT/clone" 2> "$OUT/clone.err"
cd "$OUT/clone"
echo pushed > pushed.txt
git add pushed.txt
git commit -q -m e2e-push-through-agentvault
git push -q origin HEAD:main 2> "$OUT/push.err"
`,
	})
	if s.code != 0 {
		t.Fatalf("exit %d; clone: %s push: %s", s.code, s.file("clone.err"), s.file("push.err"))
	}
	if log := g.log(t); log[0] != "e2e-push-through-agentvault" {
		t.Errorf("bare repo log = %v, want the pushed commit on top", log)
	}
	want := "Basic " + b64("x-access-token:"+secret)
	authed := 0
	for _, r := range g.requests() {
		if r.Header.Get("Authorization") == want {
			authed++
		}
		if r.Header.Get("Proxy-Authorization") != "" {
			t.Errorf("Proxy-Authorization forwarded to the git server on %s %s", r.Method, r.Path)
		}
	}
	if authed < 2 { // at least the clone's and the push's ref advertisement
		t.Errorf("git server saw the injected Basic credentials on %d of %d requests", authed, len(g.requests()))
	}
	if len(auditFind(s.audit, map[string]any{"action": "inject", "host": "git.example.test", "credential": "git"})) == 0 {
		t.Errorf("no inject record for git.example.test in the audit log:\n%s", s.auditRaw)
	}
	ph := s.placeholder(t, "GIT_TOKEN")
	s.assertNoSecret(t, secret) // includes the clone's .git/config and files
	s.assertNoPlaceholder(t, ph)
}
