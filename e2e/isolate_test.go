package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIsolate: under --isolate the agent's clients still get their
// credentials injected through the proxy (curl, Go, and curl ignoring the
// proxy variables through transparent mode), while a direct
// connection to a loopback server outside fails, /proc shows only the
// sandbox, the usual credential files read as empty or absent, the working
// directory stays writable and the exit status passes through.
func TestIsolate(t *testing.T) {
	needBinary(t)
	up := newUpstream(t, true)
	plain := newUpstream(t, false)
	secret := newSecret(t, "api")
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".aws"), 0o700)
	writeFile(t, filepath.Join(home, ".aws"), "credentials", "aws_secret_access_key = host-aws-secret\n")
	writeFile(t, home, ".netrc", "machine example.test password host-netrc-secret\n")
	writeFile(t, home, ".vault-token", "host-vault-token\n")

	script := curlTo("curl", "https://api.example.test/echo/curl") +
		fmt.Sprintf(`'%s' get 'https://api.example.test/echo/go' "$OUT/go" 2> "$OUT/go.err"
`, goClientBin) +
		fmt.Sprintf(`curl -sS --max-time 5 --noproxy '*' -o /dev/null http://127.0.0.1:%d/ok/direct 2> "$OUT/direct.err"; echo $? > "$OUT/direct.rc"
`, plain.Port) +
		// Transparent mode: a client that ignores the proxy variables
		// resolves the name to loopback inside and still gets injection.
		`curl -sS --max-time 20 --noproxy '*' -o "$OUT/transparent.body" -w '%{http_code}' https://api.example.test/echo/transparent > "$OUT/transparent.status" 2> "$OUT/transparent.err"
` +
		`ls -d /proc/[0-9]* | wc -l > "$OUT/procs"
cat ~/.aws/credentials ~/.netrc ~/.vault-token > "$OUT/hidden" 2>&1
echo written > "$OUT/cwd-write"
exit 5
`
	s := runSession(t, sessionOpts{
		config:  apiConfig,
		env:     map[string]string{"TEST_API_TOKEN": secret, "HOME": home},
		flags:   []string{"--isolate"},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script:  script,
	})
	if s.code != 5 {
		t.Errorf("exit %d, want the child's 5", s.code)
	}
	s.response(t, "curl", "200")
	s.response(t, "go", "200")
	s.response(t, "transparent", "200")
	for _, path := range []string{"/echo/curl", "/echo/go", "/echo/transparent"} {
		if got := onlyOne(t, up, path).Header.Get("Authorization"); got != "Bearer "+secret {
			t.Errorf("%s: upstream got Authorization %q, want the injected secret", path, got)
		}
	}
	if rc := strings.TrimSpace(s.file("direct.rc")); rc == "0" || rc == "" {
		t.Errorf("a direct connection to 127.0.0.1:%d outside the sandbox succeeded (curl exit %q)", plain.Port, rc)
	}
	if n := len(plain.requests()); n != 0 {
		t.Errorf("the loopback server outside got %d requests from the sandbox", n)
	}
	// init, sh, ls and wc.
	if n, _ := strconv.Atoi(strings.TrimSpace(s.file("procs"))); n == 0 || n > 4 {
		t.Errorf("/proc shows %q processes, want only the sandbox's (at most 4)", s.file("procs"))
	}
	if h := s.file("hidden"); strings.Contains(h, "host-") {
		t.Errorf("the agent read a hidden credential file: %q", h)
	}
	if s.file("cwd-write") != "written\n" {
		t.Error("the child could not write under $OUT")
	}
	s.assertNoSecret(t, secret)
}

// TestIsolateSignals: SIGTERM to agentvault and a terminal-style SIGINT to
// its process group end the isolated command, and agentvault exits 128+N, as
// in host mode.
func TestIsolateSignals(t *testing.T) {
	needBinary(t)
	for _, c := range []struct {
		name  string
		sig   syscall.Signal
		group bool
	}{
		{"SIGTERM to agentvault", syscall.SIGTERM, false},
		{"SIGINT to the process group", syscall.SIGINT, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			out := filepath.Join(work, "out")
			os.Mkdir(out, 0o755)
			p := startAV(t, "", map[string]string{"TEST_API_TOKEN": newSecret(t, "api"), "OUT": out},
				"run", "-q", "--isolate", "-c", writeFile(t, work, "agentvault.yaml", apiConfig), "--",
				"sh", "-c", `echo up > "$OUT/up.tmp"; mv "$OUT/up.tmp" "$OUT/up"; exec sleep 30`)
			waitForFile(t, filepath.Join(out, "up"), 15*time.Second)
			send := p.signal
			if c.group {
				send = p.signalGroup
			}
			start := time.Now()
			if err := send(c.sig); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := p.wait()
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("agentvault took %v to exit after %v", took, c.sig)
			}
			if want := 128 + int(c.sig); code != want {
				t.Errorf("exit %d, want %d (stderr %q)", code, want, stderr)
			}
		})
	}
}

// TestIsolateRefused: where user namespaces cannot be created (here: inside
// a user namespace whose user.max_user_namespaces is 0), run --isolate exits
// 78 with one paragraph naming the refused step and the fix, and the command
// never runs.
func TestIsolateRefused(t *testing.T) {
	needBinary(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("this test needs unshare(1): %v", err)
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-Ur", "sh", "-c", `echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" "$@"`,
		avBin, "run", "-q", "--isolate", "--", "touch", marker)
	cmd.Dir = dir
	cmd.Env = cleanEnv(t, nil)
	out, err := cmd.CombinedOutput()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	if code != 78 {
		t.Errorf("exit %d (%v), want 78\n%s", code, err, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although isolation was refused")
	}
	msg := strings.TrimSpace(string(out))
	for _, want := range []string{"creating the user, PID, network, mount and IPC namespaces was refused", "max_user_namespaces"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message is more than one paragraph:\n%s", msg)
	}
}
