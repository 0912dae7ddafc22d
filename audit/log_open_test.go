package audit

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentvault/agentvault/proxy"
)

// TestOpenLogRefusesPlantedFiles: the agent can write the directory the log
// lives in. Whatever it plants at the log's name, OpenLog either appends to
// a regular file of its own or refuses with a message naming the problem,
// and the file the plant points at is never written.
func TestOpenLogRefusesPlantedFiles(t *testing.T) {
	const victimContent = "export PATH=/usr/bin\n"
	tests := []struct {
		name  string
		plant func(t *testing.T, log, victim string)
		want  string // in the error; "" = accepted
	}{
		{"new file", func(*testing.T, string, string) {}, ""},
		{"existing regular file", func(t *testing.T, log, _ string) {
			mustWrite(t, log, `{"earlier":"session"}`+"\n")
		}, ""},
		{"symlink to another file", func(t *testing.T, log, victim string) {
			mustSymlink(t, victim, log)
		}, "symbolic link"},
		{"dangling symlink", func(t *testing.T, log, victim string) {
			mustSymlink(t, victim+".new", log)
		}, "symbolic link"},
		{"symlink to a directory", func(t *testing.T, log, victim string) {
			mustSymlink(t, filepath.Dir(victim), log)
		}, "symbolic link"},
		{"hard link to another file", func(t *testing.T, log, victim string) {
			if err := os.Link(victim, log); err != nil {
				t.Fatal(err)
			}
		}, "hard links"},
		{"directory", func(t *testing.T, log, _ string) {
			if err := os.Mkdir(log, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "a directory"},
		{"FIFO without a reader", func(t *testing.T, log, _ string) {
			mustMkfifo(t, log)
		}, "a FIFO"},
		{"FIFO with a reader", func(t *testing.T, log, _ string) {
			mustMkfifo(t, log)
			r, err := os.OpenFile(log, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
		}, "a FIFO"},
		{"symlink to a device", func(t *testing.T, log, _ string) {
			mustSymlink(t, os.DevNull, log)
		}, "symbolic link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "audit.jsonl")
			victimDir := t.TempDir()
			victim := filepath.Join(victimDir, "bashrc")
			mustWrite(t, victim, victimContent)
			tt.plant(t, log, victim)

			l, err := openLogBounded(t, log)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("OpenLog: %v", err)
				}
				before := len(readLinesOr(log))
				if err := l.Write(proxy.Record{Time: time.Now(), Action: proxy.ActionPass, Host: "example.com", Port: 443}); err != nil {
					t.Fatal(err)
				}
				l.Close()
				if got := len(readLinesOr(log)); got != before+1 {
					t.Errorf("%d lines after one write to %d, want appended", got, before)
				}
				if fi, err := os.Stat(log); err != nil || fi.Mode().Perm()&0o077 != 0 {
					t.Errorf("log mode %v (%v), want no access for others", fi.Mode(), err)
				}
			} else {
				if err == nil {
					l.Close()
					t.Fatalf("OpenLog accepted a planted %s", tt.name)
				}
				if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), log) {
					t.Errorf("error %q does not name the file and say %q", err, tt.want)
				}
			}
			if got, _ := os.ReadFile(victim); string(got) != victimContent {
				t.Errorf("the planted target was written: %q", got)
			}
			if _, err := os.Lstat(victim + ".new"); err == nil {
				t.Error("a dangling symlink's target was created")
			}
		})
	}
}

// openLogBounded fails the test instead of hanging when OpenLog blocks (as
// opening a FIFO for writing does while nothing reads it).
func openLogBounded(t *testing.T, path string) (*Log, error) {
	t.Helper()
	type result struct {
		l   *Log
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := OpenLog(path, "av-test")
		done <- result{l, err}
	}()
	select {
	case r := <-done:
		return r.l, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("OpenLog blocked for 10s")
		return nil, nil
	}
}

func readLinesOr(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mustMkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}
