package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAuditLogPlantedPath: the agent can write where the audit log goes.
// Whatever it plants at the log's name (a symlink to ~/.bashrc, a hard link
// to it, a FIFO), run refuses with exit 78 naming the log before the command
// starts, and the file the plant points at is not written.
func TestAuditLogPlantedPath(t *testing.T) {
	needBinary(t)
	const victimContent = "export PATH=/usr/bin\n"
	cases := []struct {
		name      string
		plant     func(t *testing.T, log, victim string)
		want      string
		viaConfig bool // name the log in the config: the harness reads a --audit-log file after the run
	}{
		{"symlink to a file", func(t *testing.T, log, victim string) {
			if err := os.Symlink(victim, log); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link", false},
		{"dangling symlink", func(t *testing.T, log, victim string) {
			if err := os.Symlink(victim+".new", log); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link", false},
		{"hard link", func(t *testing.T, log, victim string) {
			if err := os.Link(victim, log); err != nil {
				t.Fatal(err)
			}
		}, "hard links", false},
		{"FIFO", func(t *testing.T, log, _ string) {
			if err := syscall.Mkfifo(log, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file", true},
		{"symlink named in the config", func(t *testing.T, log, victim string) {
			if err := os.Symlink(victim, log); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			log := filepath.Join(work, "audit.jsonl")
			victim := writeFile(t, work, "bashrc", victimContent)
			marker := filepath.Join(work, "child-ran")
			c.plant(t, log, victim)

			args := []string{"run", "--audit-log", log}
			if c.viaConfig {
				args = []string{"run", "-c", writeFile(t, work, "av.yaml", "version: 1\naudit:\n  log: "+log+"\n")}
			}
			_, stderr, code := run(t, nil, append(args, "--", "sh", "-c", "touch "+marker)...)
			if code != 78 {
				t.Errorf("exit %d, want 78", code)
			}
			if !strings.Contains(stderr, log) || !strings.Contains(stderr, c.want) {
				t.Errorf("stderr does not name %s and say %q:\n%s", log, c.want, stderr)
			}
			if got := readFileOr(victim, ""); got != victimContent {
				t.Errorf("the planted target was written: %q", got)
			}
			if _, err := os.Lstat(victim + ".new"); err == nil {
				t.Error("the dangling symlink's target was created")
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the command ran")
			}
		})
	}
}
