package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIsolateHiddenFileReplacedOutside: while an isolated agent runs, a
// process outside the sandbox rewrites hidden files the way git's credential
// store, npm or an editor do (a new file renamed over the old one), and
// creates one that did not exist (a first `docker login`). Linux detaches a
// mount on a replaced entry in every namespace, so without the sandbox's
// watch the agent would read the new files.
func TestIsolateHiddenFileReplacedOutside(t *testing.T) {
	needBinary(t)
	home := t.TempDir()
	sync := t.TempDir()
	netrc := filepath.Join(home, ".netrc")
	creds := filepath.Join(home, ".git-credentials")
	docker := filepath.Join(home, ".docker", "config.json")
	writeFile(t, home, ".netrc", "machine old.example.test password host-old\n")
	writeFile(t, home, ".git-credentials", "https://u:host-old@old.example.test\n")
	if err := os.MkdirAll(filepath.Dir(docker), 0o700); err != nil {
		t.Fatal(err)
	}

	replaced := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(sync, "ready")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				replaced <- os.ErrDeadlineExceeded
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		var err error
		for _, f := range []struct{ path, content string }{
			{netrc, "machine new.example.test password host-new-netrc\n"},
			{creds, "https://u:host-new-creds@new.example.test\n"},
			{docker, `{"auths":{"registry.example.test":{"auth":"host-new-docker"}}}`},
		} {
			tmp := f.path + ".tmp"
			if e := os.WriteFile(tmp, []byte(f.content), 0o600); e != nil && err == nil {
				err = e
			}
			if e := os.Rename(tmp, f.path); e != nil && err == nil {
				err = e
			}
		}
		if e := os.WriteFile(filepath.Join(sync, "replaced"), nil, 0o600); e != nil && err == nil {
			err = e
		}
		replaced <- err
	}()

	s := runSession(t, sessionOpts{
		env:   map[string]string{"HOME": home, "SYNC": sync},
		flags: []string{"--isolate"},
		script: `cat "$HOME/.netrc" "$HOME/.git-credentials" > "$OUT/before" 2>&1
: > "$SYNC/ready"
i=0; while [ ! -e "$SYNC/replaced" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
sleep 0.3
cat "$HOME/.netrc" "$HOME/.git-credentials" "$HOME/.docker/config.json" > "$OUT/after" 2>&1
exit 0
`,
	})
	if err := <-replaced; err != nil {
		t.Fatalf("replacing the files outside: %v", err)
	}
	if s.code != 0 {
		t.Fatalf("exit %d\n%s", s.code, clip(s.stderr))
	}
	if strings.Contains(s.file("before"), "host-old") {
		t.Fatal("the probe is broken: the hidden files were readable from the start")
	}
	if after := s.file("after"); strings.Contains(after, "host-new") {
		t.Errorf("files replaced outside the sandbox during the session are readable inside:\n%s", after)
	}
	// The user's files are the new ones: the sandbox changed nothing outside.
	if b, _ := os.ReadFile(netrc); !strings.Contains(string(b), "host-new-netrc") {
		t.Errorf("~/.netrc outside is %q", b)
	}
}
