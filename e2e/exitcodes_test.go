package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExitCodes: the command's own status, 128+N for a signal, and
// agentvault's own codes before the command starts (docs/cli.md).
func TestExitCodes(t *testing.T) {
	needBinary(t)
	secret := newSecret(t, "api")
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", apiConfig)
	notExec := writeFile(t, dir, "not-executable.sh", "#!/bin/sh\nexit 0\n")
	// Line numbers are 1-based and must point at the offending line
	// (yaml.v3 itself reports some of these one line early).
	bad := map[string]struct {
		yaml string
		line int
	}{
		"bad-tab.yaml": {"version: 1\ncredentials:\n  - name: api\n\tsecret: env:TEST_API_TOKEN\n", 4},
		"bad-unknown-key.yaml": {"version: 1\ncredentials:\n  - name: api\n    secret: env:TEST_API_TOKEN\n" +
			"    hosts: [api.example.test]\n    colour: blue\n", 6},
		"bad-top-key.yaml": {"version: 1\nbogus_section: {}\ncredentials: []\n", 2},
		"bad-duplicate.yaml": {"version: 1\ncredentials:\n  - name: api\n    secret: env:TEST_API_TOKEN\n" +
			"    hosts: [api.example.test]\n  - name: api\n    secret: env:TEST_API_TOKEN\n    hosts: [other.example.test]\n", 6},
		"bad-type.yaml": {"version: 1\ncredentials:\n  - name: api\n    secret: env:TEST_API_TOKEN\n    hosts: 5\n", 5},
		"bad-bracket.yaml": {"version: 1\ncredentials:\n  - name: api\n    secret: env:TEST_API_TOKEN\n" +
			"    hosts: [api.example.test\n    env: [API_TOKEN]\n", 5},
		"bad-duration.yaml": {"version: 1\ncredentials:\n  - name: api\n    secret: env:TEST_API_TOKEN\n" +
			"    hosts: [api.example.test]\n    ttl: ten minutes\n", 6},
	}
	unresolvable := writeFile(t, dir, "unresolvable.yaml", "version: 1\ncredentials:\n  - name: unresolvable-cred\n"+
		"    secret: env:E2E_DEFINITELY_UNSET_VAR\n    hosts: [api.example.test]\n    inject: bearer\n")
	if err := os.Chmod(notExec, 0o644); err != nil {
		t.Fatal(err)
	}

	type tc struct {
		name   string
		env    map[string]string
		args   []string
		want   int
		stderr string // regexp the stderr must match ("" = no check)
	}
	cmd := func(c ...string) []string { return append([]string{"run", "-q", "-c", good, "--"}, c...) }
	cases := []tc{
		{name: "child exit 0", args: cmd("true"), want: 0},
		{name: "child exit 7", args: cmd("sh", "-c", "exit 7"), want: 7},
		{name: "child killed by SIGTERM", args: cmd("sh", "-c", "kill -TERM $$"), want: 143},
		{name: "child killed by SIGKILL", args: cmd("sh", "-c", "kill -KILL $$"), want: 137},
		{name: "unknown flag", args: []string{"run", "--no-such-flag", "-c", good, "--", "true"}, want: 64},
		{name: "no command", args: []string{"run", "-c", good}, want: 64},
		{name: "missing config file", args: []string{"run", "-c", filepath.Join(dir, "absent.yaml"), "--", "true"}, want: 78,
			stderr: regexp.QuoteMeta("absent.yaml")},
		{name: "unresolvable credential", args: []string{"run", "-c", unresolvable, "--", "true"}, want: 69,
			stderr: `unresolvable-cred.*env|env.*unresolvable-cred`},
		{name: "command not found (path)", args: cmd("/nonexistent/cmd"), want: 127, stderr: "/nonexistent/cmd"},
		{name: "command not found (PATH)", args: cmd("agentvault-e2e-no-such-command"), want: 127},
		{name: "command not executable", args: cmd(notExec), want: 126, stderr: "not-executable.sh"},
		{name: "nested run", env: map[string]string{"AGENTVAULT_SESSION": "av-outer"}, args: cmd("true"), want: 64,
			stderr: `(?i)nested|inside|AGENTVAULT_SESSION`},
		{name: "non-loopback listen", args: []string{"run", "--listen", "0.0.0.0:0", "-c", good, "--", "true"}, want: 64,
			stderr: "0.0.0.0"},
		{name: "loopback listen", args: []string{"run", "--listen", "127.0.0.1:0", "-c", good, "--", "true"}, want: 0},
	}
	for name, b := range bad {
		path := writeFile(t, dir, name, b.yaml)
		cases = append(cases, tc{
			name: "config " + name, args: []string{"run", "-c", path, "--", "true"}, want: 78,
			stderr: regexp.QuoteMeta(name) + fmt.Sprintf(":%d(\\D|$)", b.line),
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"TEST_API_TOKEN": secret}
			for k, v := range c.env {
				env[k] = v
			}
			stdout, stderr, code := run(t, env, c.args...)
			if code != c.want {
				t.Errorf("exit %d, want %d", code, c.want)
			}
			if c.want >= 64 && c.want != 137 && c.want != 143 && strings.TrimSpace(stderr) == "" {
				t.Error("failure with an empty stderr: want one line naming the cause")
			}
			if c.stderr != "" && !regexp.MustCompile(c.stderr).MatchString(stderr) {
				t.Errorf("stderr does not match %q:\n%s", c.stderr, stderr)
			}
			if strings.Contains(stdout+stderr, secret) {
				t.Error("the secret appears in agentvault's output")
			}
		})
	}
}

// TestSignals: SIGTERM and SIGHUP sent to agentvault alone reach the child;
// SIGINT sent to the process group (a terminal's Ctrl-C) ends the child while
// agentvault survives to clean up. Each time agentvault exits with the
// child's 128+N and removes its session directory.
func TestSignals(t *testing.T) {
	needBinary(t)
	cases := []struct {
		name  string
		sig   syscall.Signal
		group bool
	}{
		{"SIGTERM to agentvault", syscall.SIGTERM, false},
		{"SIGHUP to agentvault", syscall.SIGHUP, false},
		{"SIGINT to the process group", syscall.SIGINT, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			out := filepath.Join(work, "out")
			os.Mkdir(out, 0o755)
			script := `echo $$ > "$OUT/pid.tmp"; echo "$SSL_CERT_FILE" > "$OUT/bundle.tmp"
mv "$OUT/bundle.tmp" "$OUT/bundle"; mv "$OUT/pid.tmp" "$OUT/pid"
exec sleep 30`
			p := startAV(t, "", map[string]string{"TEST_API_TOKEN": newSecret(t, "api"), "OUT": out},
				"run", "-q", "-c", writeFile(t, work, "agentvault.yaml", apiConfig), "--", "sh", "-c", script)
			bundle := waitForFile(t, filepath.Join(out, "bundle"), 15*time.Second)
			pid := waitForFile(t, filepath.Join(out, "pid"), 5*time.Second)
			t.Cleanup(func() { killIfAlive(pid) })
			start := time.Now()
			send := p.signal
			if c.group {
				send = p.signalGroup
			}
			if err := send(c.sig); err != nil {
				t.Fatal(err)
			}
			_, _, code := p.wait()
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("agentvault took %v to exit after %v", took, c.sig)
			}
			if want := 128 + int(c.sig); code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
			if st := readFileOr("/proc/"+pid+"/stat", ""); st != "" && !strings.Contains(st, ") Z ") {
				t.Errorf("child %s still running after agentvault exited: %.80s", pid, st)
			}
			if bundle == "" {
				t.Fatal("child saw no SSL_CERT_FILE")
			}
			if _, err := os.Stat(filepath.Dir(bundle)); !os.IsNotExist(err) {
				t.Errorf("session dir %s survived %v (stat: %v)", filepath.Dir(bundle), c.sig, err)
			}
		})
	}
}

// killIfAlive ends the child we made if agentvault left it behind, so a
// failure does not leave a sleep running.
func killIfAlive(pid string) {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 1 {
		return
	}
	if st := readFileOr("/proc/"+pid+"/cmdline", ""); strings.HasPrefix(st, "sleep\x0030") {
		syscall.Kill(n, syscall.SIGKILL)
	}
}
