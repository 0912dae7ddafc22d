package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStaleSessionDirRemoved: an agentvault killed with SIGKILL cannot
// remove its session directory; the next session does, and leaves alone
// the directory of a session that still runs.
func TestStaleSessionDirRemoved(t *testing.T) {
	// Both places a session directory can go are the test's own, so no
	// other test's sessions are in the way.
	xdg, tmp := t.TempDir(), t.TempDir()
	cfg := writeFile(t, t.TempDir(), "agentvault.yaml", apiConfig)
	// The child reports its session directory, then waits (at most 30 s)
	// until the test lets it go.
	const child = `dirname "$SSL_CERT_FILE" > "$OUT/dir.tmp" && mv "$OUT/dir.tmp" "$OUT/dir"
i=0
while [ ! -e "$OUT/go" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
`
	start := func(name string) (*avProc, string, string) {
		out := filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"XDG_RUNTIME_DIR": xdg, "TMPDIR": tmp, "OUT": out, "TEST_API_TOKEN": newSecret(t, "api")}
		p := startAV(t, "", env, "run", "-q", "-c", cfg, "--", "sh", "-c", child)
		var dir string
		for deadline := time.Now().Add(30 * time.Second); dir == ""; time.Sleep(50 * time.Millisecond) {
			dir = strings.TrimSpace(readFileOr(filepath.Join(out, "dir"), ""))
			if dir == "" && time.Now().After(deadline) {
				t.Fatalf("%s: the child never reported its session directory", name)
			}
		}
		if filepath.Dir(dir) != xdg {
			t.Fatalf("%s: session directory %s is not under $XDG_RUNTIME_DIR", name, dir)
		}
		return p, dir, out
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }

	killed, killedDir, _ := start("killed")
	live, liveDir, liveOut := start("live")
	// SIGKILL to agentvault and its child alike: nothing gets to clean up.
	if err := killed.signalGroup(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed.wait()
	if !exists(killedDir) {
		t.Fatalf("%s vanished with its killed owner: nothing left to test", killedDir)
	}

	next, nextDir, nextOut := start("next")
	if exists(killedDir) {
		t.Errorf("the killed session's directory %s survived the next session's start", killedDir)
	}
	if !exists(liveDir) {
		t.Errorf("the running session's directory %s was removed", liveDir)
	}
	for _, out := range []string{liveOut, nextOut} {
		if err := os.WriteFile(filepath.Join(out, "go"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*avProc{live, next} {
		if _, _, code := p.wait(); code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
	}
	for _, d := range []string{liveDir, nextDir} {
		if exists(d) {
			t.Errorf("%s outlived its session", d)
		}
	}
}
