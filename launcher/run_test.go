package launcher

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var cleanEnv = []string{"PATH=/usr/bin:/bin"}

// resolveFixture makes a directory holding an executable, a non-executable
// file and a directory, and a second directory with an executable of the
// non-executable's name.
func resolveFixture(t *testing.T) (a, b string) {
	t.Helper()
	a, b = t.TempDir(), t.TempDir()
	write := func(p string, mode os.FileMode) {
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(a, "tool"), 0o755)
	write(filepath.Join(a, "noexec"), 0o644)
	write(filepath.Join(a, "shadowed"), 0o644)
	write(filepath.Join(b, "shadowed"), 0o755)
	if err := os.Mkdir(filepath.Join(a, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestResolve(t *testing.T) {
	a, b := resolveFixture(t)
	tests := []struct {
		name, argv0 string
		env         []string
		wantPath    string
		wantCode    int // 0: success
	}{
		{"found in child PATH", "tool", []string{"PATH=" + a}, filepath.Join(a, "tool"), 0},
		{"child PATH, not agentvault's", "sh", []string{"PATH=" + a}, "", 127},
		{"missing", "nope", []string{"PATH=" + a + ":" + b}, "", 127},
		{"not executable in PATH", "noexec", []string{"PATH=" + a}, "", 126},
		{"later executable beats earlier non-executable", "shadowed", []string{"PATH=" + a + ":" + b}, filepath.Join(b, "shadowed"), 0},
		{"directory in PATH is skipped", "adir", []string{"PATH=" + a}, "", 127},
		{"absolute executable", filepath.Join(a, "tool"), nil, filepath.Join(a, "tool"), 0},
		{"absolute non-executable", filepath.Join(a, "noexec"), nil, "", 126},
		{"absolute directory", filepath.Join(a, "adir"), nil, "", 126},
		{"absolute missing", filepath.Join(a, "missing"), nil, "", 127},
		{"path through a file", filepath.Join(a, "tool", "x"), nil, "", 127},
		{"unset PATH uses default", "sh", []string{"HOME=/"}, "/bin/sh", 0},
		{"empty command", "", cleanEnv, "", 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.argv0, tt.env)
			if tt.wantCode == 0 {
				if err != nil || got != tt.wantPath {
					t.Fatalf("Resolve(%q) = %q, %v; want %q", tt.argv0, got, err, tt.wantPath)
				}
				return
			}
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("Resolve(%q) = %q, %v; want *StartError", tt.argv0, got, err)
			}
			if se.Code != tt.wantCode {
				t.Fatalf("code %d (%v), want %d", se.Code, err, tt.wantCode)
			}
		})
	}
}

func TestResolveIgnoresRelativePathEntries(t *testing.T) {
	a, _ := resolveFixture(t)
	t.Chdir(a)
	for _, path := range []string{".", "", "./"} {
		_, err := Resolve("tool", []string{"PATH=" + path})
		var se *StartError
		if !errors.As(err, &se) || se.Code != 127 || !strings.Contains(err.Error(), "relative PATH") {
			t.Errorf("PATH=%q: err = %v, want 127 naming the relative entry", path, err)
		}
	}
	// A name with a slash is still resolved against the working directory.
	if p, err := Resolve("./tool", nil); err != nil || p != "./tool" {
		t.Errorf("Resolve(./tool) = %q, %v", p, err)
	}
}

func TestRun(t *testing.T) {
	t.Setenv("LAUNCHER_TEST_LEAK", "from-parent")
	dir := t.TempDir()
	noShebang := filepath.Join(dir, "noshebang")
	if err := os.WriteFile(noShebang, []byte("echo hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cmd     Cmd
		want    int
		wantOut string
		wantErr bool
	}{
		{name: "success", cmd: Cmd{Argv: []string{"/bin/sh", "-c", "echo hi"}}, want: 0, wantOut: "hi\n"},
		{name: "exit code passthrough", cmd: Cmd{Argv: []string{"/bin/sh", "-c", "exit 7"}}, want: 7},
		{name: "death by SIGTERM", cmd: Cmd{Argv: []string{"/bin/sh", "-c", "kill -TERM $$"}}, want: 143},
		{name: "death by SIGKILL", cmd: Cmd{Argv: []string{"/bin/sh", "-c", "kill -KILL $$"}}, want: 137},
		{name: "looked up in child PATH", cmd: Cmd{Argv: []string{"sh", "-c", "exit 3"}, Env: cleanEnv}, want: 3},
		{name: "child env is exactly Env", cmd: Cmd{Argv: []string{"/bin/sh", "-c", `echo "$FOO ${LAUNCHER_TEST_LEAK-unset}"`}, Env: []string{"FOO=bar"}}, wantOut: "bar unset\n"},
		{name: "nil Env is empty, not inherited", cmd: Cmd{Argv: []string{"/bin/sh", "-c", `echo "${LAUNCHER_TEST_LEAK-unset}"`}}, wantOut: "unset\n"},
		{name: "Dir", cmd: Cmd{Argv: []string{"/bin/sh", "-c", "pwd -P"}, Dir: dir}, wantOut: mustEval(t, dir) + "\n"},
		{name: "stdin", cmd: Cmd{Argv: []string{"/bin/sh", "-c", "read x; echo got $x"}, Stdin: strings.NewReader("line\n")}, wantOut: "got line\n"},
		{name: "not found", cmd: Cmd{Argv: []string{"no-such-command-xyz"}, Env: cleanEnv}, want: 127, wantErr: true},
		{name: "not executable", cmd: Cmd{Argv: []string{dir}}, want: 126, wantErr: true},
		{name: "exec format error", cmd: Cmd{Argv: []string{noShebang}}, want: 126, wantErr: true},
		{name: "no argv", cmd: Cmd{}, want: 127, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			c := tt.cmd
			c.Stdout, c.Stderr = &out, &errb
			if c.Stdin == nil {
				c.Stdin = strings.NewReader("")
			}
			got, err := Run(context.Background(), c)
			if got != tt.want {
				t.Errorf("status %d, want %d (err %v, stderr %q)", got, tt.want, err, errb.String())
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
			var se *StartError
			if tt.wantErr && (!errors.As(err, &se) || se.Code != tt.want) {
				t.Errorf("err = %#v, want *StartError with code %d", err, tt.want)
			}
			if tt.wantOut != "" && out.String() != tt.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tt.wantOut)
			}
		})
	}
}

func mustEval(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Run must leave agentvault's signal dispositions as it found them.
func TestRunRestoresSignals(t *testing.T) {
	before := map[os.Signal]bool{}
	for _, s := range handledSignals {
		before[s] = signal.Ignored(s)
	}
	if status, err := Run(context.Background(), Cmd{Argv: []string{"/bin/sh", "-c", "exit 0"},
		Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}); status != 0 || err != nil {
		t.Fatalf("Run: %d, %v", status, err)
	}
	for _, s := range handledSignals {
		if got := signal.Ignored(s); got != before[s] {
			t.Errorf("%v ignored = %v after Run, was %v", s, got, before[s])
		}
	}
}

func TestExitStatusNil(t *testing.T) {
	if got := ExitStatus(nil); got != -1 {
		t.Fatalf("ExitStatus(nil) = %d", got)
	}
}

// readyWriter closes ready when the child has printed "ready".
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	once  sync.Once
	ready chan struct{}
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), "ready") {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func TestRunContextCancel(t *testing.T) {
	old := killGrace
	killGrace = 300 * time.Millisecond
	t.Cleanup(func() { killGrace = old })

	// Loops are bounded so a broken Run cannot leave a child running long.
	const loop = `echo ready; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; exit 99`
	tests := []struct {
		name, script string
		want         int
	}{
		{"SIGTERM first", `trap 'exit 3' TERM; ` + loop, 3},
		{"SIGKILL after grace", `trap '' TERM; ` + loop, 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &readyWriter{ready: make(chan struct{})}
			type result struct {
				status int
				err    error
			}
			done := make(chan result, 1)
			go func() {
				s, err := Run(ctx, Cmd{Argv: []string{"/bin/sh", "-c", tt.script}, Env: cleanEnv,
					Stdin: strings.NewReader(""), Stdout: w, Stderr: io.Discard})
				done <- result{s, err}
			}()
			select {
			case <-w.ready:
			case <-time.After(10 * time.Second):
				t.Fatal("child never became ready")
			}
			start := time.Now()
			cancel()
			select {
			case r := <-done:
				if r.err != nil || r.status != tt.want {
					t.Fatalf("status %d, err %v; want %d", r.status, r.err, tt.want)
				}
				if el := time.Since(start); el > 5*time.Second {
					t.Errorf("took %v after cancel", el)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
}

// startHelper runs the test binary as helper "run" with script, and returns
// once the script printed "ready <pid>", with the script's pid.
func startHelper(t *testing.T, script string) (cmd *exec.Cmd, childPID int, lines <-chan string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd = execHelper(ctx, "run", "LAUNCHER_TEST_SCRIPT="+script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	select {
	case l, ok := <-ch:
		pid, err := strconv.Atoi(strings.TrimPrefix(l, "ready "))
		if !ok || err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("helper did not get ready: %q", l)
		}
		childPID = pid
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("helper did not get ready in time")
	}
	return cmd, childPID, ch
}

// finishHelper drains the output and returns it with the helper's status.
func finishHelper(t *testing.T, cmd *exec.Cmd, lines <-chan string) (string, int) {
	t.Helper()
	var rest []string
	for l := range lines { // closed at EOF; the helper is bounded by its context
		rest = append(rest, l)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("helper: %v", err)
	}
	return strings.Join(rest, "\n"), ExitStatus(cmd.ProcessState)
}

func TestRunSignals(t *testing.T) {
	for _, s := range handledSignals {
		if ignoredAtStart[s] {
			t.Skipf("test process started with %v ignored", s)
		}
	}
	const script = `trap 'echo got-TERM; exit 42' TERM; trap 'echo got-HUP; exit 43' HUP; ` +
		`trap 'echo got-INT; exit 44' INT; trap 'echo got-QUIT; exit 45' QUIT; ` +
		`echo "ready $$"; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; exit 99`
	tests := []struct {
		name    string
		send    []syscall.Signal // to the helper (agentvault), not the child
		want    int
		wantOut string
		notOut  string
	}{
		{name: "SIGTERM forwarded", send: []syscall.Signal{syscall.SIGTERM}, want: 42, wantOut: "got-TERM"},
		{name: "SIGHUP forwarded", send: []syscall.Signal{syscall.SIGHUP}, want: 43, wantOut: "got-HUP"},
		// No terminal here: a SIGINT or SIGQUIT can only have been aimed at
		// agentvault (a CI runner cancelling the job), so it is forwarded.
		{name: "SIGINT forwarded without a terminal", send: []syscall.Signal{syscall.SIGINT}, want: 44, wantOut: "got-INT"},
		{name: "SIGQUIT forwarded without a terminal", send: []syscall.Signal{syscall.SIGQUIT}, want: 45, wantOut: "got-QUIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd, _, lines := startHelper(t, script)
			for i, s := range tt.send {
				if i > 0 {
					// Give a wrongly forwarded signal time to show in the output.
					time.Sleep(300 * time.Millisecond)
				}
				if err := cmd.Process.Signal(s); err != nil {
					t.Fatal(err)
				}
			}
			out, status := finishHelper(t, cmd, lines)
			if status != tt.want {
				t.Errorf("helper status %d, want %d; output %q", status, tt.want, out)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("output %q lacks %q", out, tt.wantOut)
			}
			if tt.notOut != "" && strings.Contains(out, tt.notOut) {
				t.Errorf("output %q has %q: signal reached the child through agentvault", out, tt.notOut)
			}
		})
	}
}

// A terminal sends SIGINT to the whole foreground process group: the child
// must share agentvault's group and must not have inherited an ignored SIGINT.
func TestRunChildGetsTerminalSignals(t *testing.T) {
	if ignoredAtStart[syscall.SIGINT] {
		t.Skip("test process started with SIGINT ignored")
	}
	cmd, pid, lines := startHelper(t, `echo "ready $$"; exec sleep 10`)
	helperGroup, err1 := syscall.Getpgid(cmd.Process.Pid)
	childGroup, err2 := syscall.Getpgid(pid)
	if err1 != nil || err2 != nil || helperGroup != childGroup {
		t.Errorf("process groups: helper %d (%v), child %d (%v)", helperGroup, err1, childGroup, err2)
	}
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	out, status := finishHelper(t, cmd, lines)
	if status != 128+int(syscall.SIGINT) {
		t.Fatalf("helper status %d, want %d (child killed by SIGINT); output %q", status, 128+int(syscall.SIGINT), out)
	}
}

// TestRunTerminalSIGINTNotDoubled: in the terminal's foreground group a
// Ctrl-C reaches the child directly, so a SIGINT agentvault receives there
// is not sent a second time (Claude Code, for one, exits on a second Ctrl-C).
// script(1) gives the helper a real pseudo-terminal in the foreground.
func TestRunTerminalSIGINTNotDoubled(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed: no pseudo-terminal to test with")
	}
	if ignoredAtStart[syscall.SIGINT] {
		t.Skip("test process started with SIGINT ignored")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	child := `trap 'echo got-TERM; exit 42' TERM; trap 'echo got-INT; exit 44' INT; ` +
		`echo "ready $PPID"; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; exit 99`
	cmd := exec.CommandContext(ctx, scriptBin, "-qefc", "'"+testBinary()+"'", "/dev/null")
	cmd.Env = []string{helperVar + "=run", "PATH=/usr/bin:/bin", "SHELL=/bin/sh", raceNoExitSleep, "LAUNCHER_TEST_SCRIPT=" + child}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	helper := 0
	var seen []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		seen = append(seen, line)
		if p, ok := strings.CutPrefix(line, "ready "); ok {
			helper, _ = strconv.Atoi(p)
			break
		}
	}
	if helper == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper did not get ready: %q", seen)
	}
	syscall.Kill(helper, syscall.SIGINT)
	time.Sleep(300 * time.Millisecond) // room for a wrongly forwarded SIGINT to show
	syscall.Kill(helper, syscall.SIGTERM)
	for sc.Scan() {
		seen = append(seen, strings.TrimSpace(sc.Text()))
	}
	cmd.Wait()
	got := strings.Join(seen, "\n")
	if strings.Contains(got, "got-INT") || !strings.Contains(got, "got-TERM") {
		t.Fatalf("child output %q: want only got-TERM (SIGINT from the terminal's group must not be forwarded)", got)
	}
}
