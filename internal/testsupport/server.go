package testsupport

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server describes a child process that serves HTTP on a loopback port.
type server struct {
	name   string
	argv   func(port int) []string
	env    []string
	health string                // path polled until ready says so
	ready  func(status int) bool // nil: any answer
	wait   time.Duration         // how long one start may take to be ready
}

// serverAttempts bounds the retries of a start whose port another process
// took between FreePort and the child's bind.
const serverAttempts = 3

// start runs s on a free port until the test ends and returns its base URL.
// The child gets only s.env and its own process group, which the cleanup
// kills whole; the server's output is logged when the test fails.
func (s server) start(t testing.TB) string {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < serverAttempts; attempt++ {
		base, err := s.try(t)
		if err == nil {
			return base
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return ""
}

func (s server) try(t testing.TB) (string, error) {
	t.Helper()
	port := FreePort(t)
	argv := s.argv(port)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = s.env
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting %s: %v", argv[0], err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() error {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
			return nil
		case <-time.After(10 * time.Second):
			return fmt.Errorf("%s (pid %d) did not exit", s.name, cmd.Process.Pid)
		}
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 5 * time.Second}
	for deadline := time.Now().Add(s.wait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			return "", fmt.Errorf("%s exited early:\n%s", s.name, logs.tail(4000))
		default:
		}
		res, err := client.Get(base + s.health)
		if err != nil {
			continue
		}
		res.Body.Close()
		if s.ready == nil || s.ready(res.StatusCode) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("%s log (tail):\n%s", s.name, logs.tail(4000))
				}
				if err := stop(); err != nil {
					t.Error(err)
				}
			})
			return base, nil
		}
	}
	err := fmt.Errorf("%s not ready after %v:\n%s", s.name, s.wait, logs.tail(4000))
	return "", errors.Join(err, stop())
}

// logBuffer collects a child's output from two pipes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// tail is the last n bytes written.
func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
