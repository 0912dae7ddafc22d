//go:build darwin

package isolate

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/agentvault/agentvault/launcher"
)

// sandboxExec is Apple's front end to the Seatbelt sandbox. It is marked
// deprecated in its manual page but ships with every macOS and is what
// browsers' and other agents' sandboxes build on.
const sandboxExec = "/usr/bin/sandbox-exec"

// Sandbox on macOS is a Seatbelt profile the command will run under: unlike
// Linux's namespaces there is nothing to set up before the command starts,
// and the command shares agentvault's loopback, so the proxy's own listener
// serves it. The API is Linux's, so session drives both the same way.
//
// Untested: this project's tests run on Linux, where only the profile's text
// is checked.
type Sandbox struct {
	spec Spec

	mu     sync.Mutex
	ports  []int           // loopback ports the command may connect to
	idle   []*idleListener // handed out by Listen and ListenTransparent
	closed bool
}

// Start checks that sandbox-exec is there; nothing runs yet. Spec.Transparent
// is ignored: macOS has no per-process name resolution to point at loopback,
// so a client that ignores the proxy variables is refused by the profile
// instead of being served.
func Start(spec Spec) (*Sandbox, error) {
	if _, err := os.Stat(sandboxExec); err != nil {
		return nil, &Refused{Step: "finding " + sandboxExec, Err: err,
			Hint: "Isolation on macOS runs the command under sandbox-exec, which every macOS since 10.5 ships."}
	}
	return &Sandbox{spec: spec}, nil
}

// IsInit is false: the sandbox has no init of its own on macOS.
func IsInit() bool { return false }

// Main is never reached on macOS.
func Main() int { return 70 }

// Listen allows the command to connect to 127.0.0.1:port, where the proxy
// already listens outside (the command shares that loopback). The listener it
// returns never accepts anything; it exists so that the caller serves the
// proxy "inside" as on Linux.
func (s *Sandbox) Listen(port int) (net.Listener, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("isolate: port %d out of range", port)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ports = append(s.ports, port)
	return s.idleLocked(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}), nil
}

// ListenTransparent returns two listeners that never accept: transparent mode
// needs the sandbox's own name resolution and ports 443 and 80, which macOS
// cannot give one process tree.
func (s *Sandbox) ListenTransparent() (net.Listener, net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idleLocked(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}),
		s.idleLocked(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}), nil
}

func (s *Sandbox) idleLocked(addr net.Addr) *idleListener {
	l := &idleListener{addr: addr, done: make(chan struct{})}
	if s.closed {
		l.Close()
	}
	s.idle = append(s.idle, l)
	return l
}

// Start runs the command under sandbox-exec with the profile (the ports
// allowed by Listen, the hidden paths resolved now). sandbox-exec applies the
// profile to itself and then execs the command, so the process is the command.
// It implements launcher.Sandbox.
func (s *Sandbox) Start(path string, argv, env []string, dir string, stdio [3]*os.File) (launcher.Process, error) {
	// sandbox-exec would report a missing command only as its exit status.
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, &fs.PathError{Op: "exec", Path: path, Err: syscall.EACCES}
	}
	s.mu.Lock()
	ports := append([]int(nil), s.ports...)
	s.mu.Unlock()
	prof, err := NewSeatbeltProfile(ports, ResolveHidden(s.spec.Hide, filepath.EvalSymlinks))
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{
		Path:   sandboxExec,
		Args:   prof.Args(path, argv),
		Env:    env,
		Dir:    dir,
		Stdin:  stdio[0],
		Stdout: stdio[1],
		Stderr: stdio[2],
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &process{cmd: cmd}, nil
}

// Close ends the listeners handed out; the command is the caller's to end.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, l := range s.idle {
		l.Close()
	}
	return nil
}

// process is the command started through sandbox-exec, which became it.
type process struct {
	cmd *exec.Cmd
}

func (p *process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

func (p *process) Kill() error { return p.cmd.Process.Kill() }

func (p *process) Wait() (*os.ProcessState, error) {
	err := p.cmd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		err = nil
	}
	return p.cmd.ProcessState, err
}

// idleListener accepts nothing until it is closed.
type idleListener struct {
	addr net.Addr
	once sync.Once
	done chan struct{}
}

func (l *idleListener) Accept() (net.Conn, error) {
	<-l.done
	return nil, net.ErrClosed
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *idleListener) Addr() net.Addr { return l.addr }
