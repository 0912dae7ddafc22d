//go:build unix

package ca

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// deadProcess returns the owner of a process that has exited and been
// reaped, with the start time it had.
func deadProcess(t *testing.T) owner {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start, _ := processStart(cmd.Process.Pid)
	cmd.Process.Kill()
	cmd.Wait()
	o := owner{pid: cmd.Process.Pid, start: start, pidNS: pidNamespace()}
	if processExists(o.pid) != procGone {
		t.Skipf("pid %d was reused at once", o.pid)
	}
	return o
}

// liveProcess returns the owner of a process that runs until the test ends.
func liveProcess(t *testing.T) owner {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	start, _ := processStart(cmd.Process.Pid)
	return owner{pid: cmd.Process.Pid, start: start, pidNS: pidNamespace()}
}

func sessionName(o owner) string { return dirPrefix + "av-0011aabb-" + o.String() + "-12345" }

// TestSweepStale: only the directories of this user's dead sessions go; a
// link named like one is removed without following it.
func TestSweepStale(t *testing.T) {
	dead := deadProcess(t)
	live := liveProcess(t)
	self := currentOwner()
	if self.start == 0 && live.start != 0 {
		t.Fatal("this process's start time is unknown although /proc shows others'")
	}
	reused := live
	reused.start++ // the pid now belongs to a process that started later
	selfReused := self
	selfReused.start++ // a dead predecessor had this process's pid
	otherNS := dead
	otherNS.pidNS++

	type entry struct {
		name string
		kind string // "dir", "link", "file"
	}
	tests := []struct {
		name     string
		entry    entry
		root     bool // needs root (to chown to another user)
		chownTo  int
		wantGone bool
	}{
		{"dead owner", entry{sessionName(dead), "dir"}, false, -1, true},
		{"dead owner, id with dashes", entry{dirPrefix + "a-p1.2.3-b-" + dead.String() + "-9", "dir"}, false, -1, true},
		{"live owner", entry{sessionName(live), "dir"}, false, -1, false},
		{"this process", entry{sessionName(self), "dir"}, false, -1, false},
		// Without /proc (start 0) a live pid is all there is to go by: kept.
		{"pid reused", entry{sessionName(reused), "dir"}, false, -1, live.start != 0},
		{"pid now this process's", entry{sessionName(selfReused), "dir"}, false, -1, self.start != 0},
		{"other pid namespace", entry{sessionName(otherNS), "dir"}, false, -1, false},
		{"other user", entry{sessionName(dead), "dir"}, true, 65534, false},
		{"link named like a dead session", entry{sessionName(dead), "link"}, false, -1, true},
		{"file named like a dead session", entry{sessionName(dead), "file"}, false, -1, true},
		{"older name without owner", entry{dirPrefix + "av-0011aabb-12345", "dir"}, false, -1, false},
		{"another program's name", entry{"agentvaultx-" + dead.String() + "-1", "dir"}, false, -1, false},
		{"no random suffix", entry{dirPrefix + "av-" + dead.String(), "dir"}, false, -1, false},
		{"pid 0", entry{sessionName(owner{pid: 0, pidNS: self.pidNS}), "dir"}, false, -1, false},
		{"two fields", entry{fmt.Sprintf("%sav-p%d.%d-1", dirPrefix, dead.pid, dead.start), "dir"}, false, -1, false},
		{"negative pid", entry{fmt.Sprintf("%sav-p-1.0.%d-1", dirPrefix, self.pidNS), "dir"}, false, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			parent := t.TempDir()
			p := filepath.Join(parent, tt.entry.name)
			// What a link points to: a directory with a file, which must survive.
			target := t.TempDir()
			precious := filepath.Join(target, "precious")
			if err := os.WriteFile(precious, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			switch tt.entry.kind {
			case "dir":
				if err := os.Mkdir(p, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(p, "ca.pem"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			case "link":
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
			case "file":
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.chownTo >= 0 {
				if err := os.Lchown(p, tt.chownTo, tt.chownTo); err != nil {
					t.Fatal(err)
				}
			}

			sweepStale([]string{parent}, self)

			_, err := os.Lstat(p)
			if gone := os.IsNotExist(err); gone != tt.wantGone {
				t.Errorf("%s: gone = %v, want %v", tt.entry.name, gone, tt.wantGone)
			}
			if _, err := os.Stat(precious); err != nil {
				t.Errorf("the link's target lost its file: %v", err)
			}
		})
	}
}

// TestNewDirSweeps: NewDir removes a dead session's directory in every place
// it could have been made, and the directory it makes names this process.
func TestNewDirSweeps(t *testing.T) {
	dead := deadProcess(t)
	xdg, tmp := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var stale []string
	for _, parent := range []string{xdg, tmp} {
		p := filepath.Join(parent, sessionName(dead))
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		stale = append(stale, p)
	}
	d, err := NewDir(envOf(map[string]string{"XDG_RUNTIME_DIR": xdg}), "av-1")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	for _, p := range stale {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived: %v", p, err)
		}
	}
	o, ok := parseOwner(filepath.Base(d.Path()))
	if !ok || o != currentOwner() {
		t.Errorf("session dir %s: owner %v %v, want %v", d.Path(), o, ok, currentOwner())
	}
}
