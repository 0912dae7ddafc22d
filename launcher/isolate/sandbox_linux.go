package isolate

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentvault/agentvault/launcher"
)

// initArg0 is the whole argv of a sandbox's PID 1; see IsInit.
const initArg0 = "agentvault-sandbox-init"

// replyTimeout bounds every wait for PID 1's answer, so a wedged sandbox is an
// error rather than a hang.
const replyTimeout = 15 * time.Second

// namespaces are created together, so every one of them is owned by the new
// user namespace, in which agentvault's own user holds every capability.
const namespaces = unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWNS | unix.CLONE_NEWIPC

// initCaps are what PID 1 needs for set-up, kept across its execve as ambient
// capabilities (its uid is not mapped yet, so it is no root there); PID 1
// drops all of them before it starts the command.
var initCaps = []uintptr{
	unix.CAP_SETUID, unix.CAP_SETGID, // its own uid_map and gid_map
	unix.CAP_SYS_ADMIN,        // mounts
	unix.CAP_NET_ADMIN,        // loopback up
	unix.CAP_NET_BIND_SERVICE, // a proxy port below 1024
	unix.CAP_SETPCAP,          // bounding set and securebits
}

// Sandbox is a set-up sandbox whose PID 1 waits for agentvault's orders. It
// implements launcher.Sandbox.
type Sandbox struct {
	cmd  *exec.Cmd
	ctl  *ctl
	mu   sync.Mutex // one request and its answer at a time
	done chan struct{}
	// transparent: names resolve to loopback inside (Spec.Transparent)
	transparent bool
	// set once PID 1 has exited, before done is closed
	state   *os.ProcessState
	waitErr error
}

// Start creates the namespaces and sets the sandbox up (uid and gid maps, a
// fresh /proc, loopback, the hidden paths, the working directory); nothing
// runs in it yet. A step the kernel refuses is a *Refused. Close it when done.
func Start(spec Spec) (*Sandbox, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("isolate: control socket: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(pair[0]), "isolate-ctl"), os.NewFile(uintptr(pair[1]), "isolate-ctl")
	cmd := &exec.Cmd{
		// The running binary itself, even if its file was replaced since.
		Path: "/proc/self/exe",
		Args: []string{initArg0},
		Env:  []string{},
		// A crash of PID 1 must be visible; it prints nothing otherwise.
		Stderr:     os.Stderr,
		ExtraFiles: []*os.File{theirs}, // fd 3
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: namespaces,
			// No UidMappings: they are written by the parent while the
			// child is still a copy of it, and agentvault is not dumpable,
			// which makes the child's /proc files root's. PID 1 maps itself.
			AmbientCaps: initCaps,
		},
	}
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		mine.Close()
		return nil, refusedClone(err)
	}
	s := &Sandbox{cmd: cmd, done: make(chan struct{}), transparent: spec.Transparent}
	go func() {
		s.waitErr = cmd.Wait()
		s.state = cmd.ProcessState
		close(s.done)
	}()
	if s.ctl, err = newCtl(mine); err != nil {
		s.Close()
		return nil, fmt.Errorf("isolate: %w", err)
	}
	reply, fds, err := s.request(msg{Op: opSetup, UID: os.Geteuid(), GID: os.Getegid(), Dir: spec.Dir, Hide: spec.Hide, Transparent: spec.Transparent})
	closeFDs(fds)
	if err == nil && reply.Op == opRefused {
		err = refusedStep(reply)
	} else if err == nil && reply.Op != opReady {
		err = fmt.Errorf("isolate: unexpected answer %q to setup", reply.Op)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// request sends m and reads the answer, within replyTimeout.
func (s *Sandbox) request(m msg, fds ...int) (msg, []int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ctl.send(m, fds...); err != nil {
		return msg{}, nil, s.lost(err)
	}
	s.ctl.c.SetReadDeadline(time.Now().Add(replyTimeout))
	defer s.ctl.c.SetReadDeadline(time.Time{})
	reply, got, err := s.ctl.recv()
	if err != nil {
		return msg{}, got, s.lost(err)
	}
	return reply, got, nil
}

// lost explains a broken control connection by PID 1's fate when known.
func (s *Sandbox) lost(err error) error {
	select {
	case <-s.done:
		return fmt.Errorf("isolate: the sandbox's init exited (%v) during set-up: %w", s.state, err)
	case <-time.After(100 * time.Millisecond):
		return fmt.Errorf("isolate: the sandbox's init does not answer: %w", err)
	}
}

// Listen opens a TCP listener on 127.0.0.1:port inside the sandbox's network
// namespace and returns it; connections accepted on it come from inside.
func (s *Sandbox) Listen(port int) (net.Listener, error) {
	reply, fds, err := s.request(msg{Op: opListen, Port: port})
	if err != nil {
		closeFDs(fds)
		return nil, err
	}
	if reply.Op == opRefused {
		closeFDs(fds)
		return nil, fmt.Errorf("isolate: %s: %s", reply.Step, reply.Err)
	}
	if reply.Op != opListening || len(fds) != 1 {
		closeFDs(fds)
		return nil, fmt.Errorf("isolate: unexpected answer %q with %d descriptors to listen", reply.Op, len(fds))
	}
	if err := checkListener(fds[0]); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	f := os.NewFile(uintptr(fds[0]), "sandbox-listener")
	defer f.Close()
	return net.FileListener(f)
}

// checkListener makes sure a received descriptor is what was asked for: a
// listening TCP socket.
func checkListener(fd int) error {
	typ, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	acc, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	dom, err3 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err := errors.Join(err1, err2, err3); err != nil || typ != unix.SOCK_STREAM || acc != 1 || dom != unix.AF_INET {
		return errors.New("isolate: the sandbox sent something other than a TCP listener")
	}
	return nil
}

// Start starts the command in the sandbox, with the three stdio files, and
// returns its handle. A failed execve is an *os.SyscallError with the errno.
// It implements launcher.Sandbox.
func (s *Sandbox) Start(path string, argv, env []string, dir string, stdio [3]*os.File) (launcher.Process, error) {
	fds := make([]int, 3)
	for i, f := range stdio {
		fds[i] = int(f.Fd())
	}
	reply, got, err := s.request(msg{Op: opExec, Path: path, Argv: argv, Env: env, Dir: dir}, fds...)
	closeFDs(got)
	switch {
	case err != nil:
		return nil, err
	case reply.Op == opExecFailed:
		return nil, &os.SyscallError{Syscall: reply.Step, Err: syscall.Errno(reply.Errno)}
	case reply.Op != opStarted:
		return nil, fmt.Errorf("isolate: unexpected answer %q to exec", reply.Op)
	}
	return process{s}, nil
}

// Close ends the sandbox and everything in it, and waits for its PID 1.
func (s *Sandbox) Close() error {
	select {
	case <-s.done:
	default:
		s.cmd.Process.Kill()
		<-s.done
	}
	if s.ctl != nil {
		s.ctl.close()
	}
	return nil
}

// process is the command as launcher sees it: signals go to it through PID 1,
// which exits with its status (128+N for signal N).
type process struct{ s *Sandbox }

func (p process) Signal(sig os.Signal) error {
	n, ok := sig.(syscall.Signal)
	if !ok {
		return errors.New("isolate: not a signal number")
	}
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.s.ctl.send(msg{Op: opSignal, Signal: int(n)})
}

// Kill ends PID 1 and with it the whole sandbox.
func (p process) Kill() error { return p.s.cmd.Process.Kill() }

func (p process) Wait() (*os.ProcessState, error) {
	<-p.s.done
	p.s.ctl.close()
	return p.s.state, nil
}
