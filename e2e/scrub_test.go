package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEnvironScrubbedAsUnprivilegedUser: run as a user without privileges,
// agentvault zeroes its original environment block, so even root (who can
// read a non-dumpable process's /proc/<pid>/environ) finds no secret there
// while the child runs, and no scrub failure is reported. The scrub writes
// through /proc/self/mem, which only works while the process is dumpable,
// so this fails if the order is wrong.
func TestEnvironScrubbedAsUnprivilegedUser(t *testing.T) {
	needBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("reading another process's /proc/<pid>/environ once it is non-dumpable needs root")
	}
	uid, gid := unprivileged(t)
	dir, bin, home := unprivilegedDir(t, uid, gid)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(out, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, dir, "agentvault.yaml", `version: 1
credentials:
  - name: probe
    secret: env:PROBE_SECRET
    hosts: [api.example.test]
    inject: bearer
`)
	os.Chmod(cfg, 0o644)
	const secret = "scrub-probe-secret-7c1e90"
	// The child says it runs, then waits (at most 30 s) for the test to look.
	const child = `echo up > "$OUT/ready"
i=0
while [ ! -e "$OUT/go" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
`
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--summary", "plain", "-c", cfg, "--", "sh", "-c", child)
	cmd.Dir = home
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "OUT=" + out, "PROBE_SECRET=" + secret}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	ready := filepath.Join(out, "ready")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child never started; agentvault stderr: %s", stderr.String())
		}
	}
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/environ")
	if err != nil {
		t.Fatalf("reading agentvault's environ as root: %v", err)
	}
	if len(environ) == 0 {
		t.Fatal("agentvault's environ is empty: nothing was checked")
	}
	if bytes.Contains(environ, []byte(secret)) {
		t.Error("the secret is still in agentvault's /proc/<pid>/environ while the child runs")
	}
	if err := os.WriteFile(filepath.Join(out, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	waited = true
	if err != nil {
		t.Fatalf("agentvault as uid %d: %v\nstderr: %s", uid, err, stderr.String())
	}
	if strings.Contains(stderr.String(), "could not scrub") {
		t.Errorf("agentvault reported a scrub failure:\n%s", stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), secret) {
		t.Error("agentvault printed the secret")
	}
}
