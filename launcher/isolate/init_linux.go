package isolate

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// IsInit reports whether this process is a sandbox's PID 1 started by Start:
// argv is exactly the marker and the process is the first of its PID
// namespace. Anyone can run the binary that way, but only inside namespaces
// of their own, where PID 1 gains nothing but what its caller gave it.
func IsInit() bool {
	return len(os.Args) == 1 && os.Args[0] == initArg0 && os.Getpid() == 1
}

// Main is the sandbox's PID 1: it sets the sandbox up as agentvault's control
// socket (fd 3) asks, starts the command, relays the signals agentvault
// forwards, reaps orphans, and returns the status to exit with: the
// command's, or 128+N if it died of signal N. Call it only when IsInit.
func Main() int {
	// Every privileged step and the fork of the command happen on this
	// thread: capabilities are per thread, and the command inherits the
	// creating thread's (dropped) ones.
	runtime.LockOSThread()
	unix.CloseOnExec(3)
	cloexecInherited()
	c, err := newCtl(os.NewFile(3, "isolate-ctl"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentvault sandbox init:", err)
		return 70
	}
	sigs := make(chan os.Signal, 32)
	subscribeAll(sigs)

	m, fds, err := c.recv()
	closeFDs(fds)
	if err != nil || m.Op != opSetup {
		return 70
	}
	if step, err := setup(m); err != nil {
		var errno syscall.Errno
		errors.As(err, &errno)
		c.send(msg{Op: opRefused, Step: step, Err: err.Error(), Errno: int(errno)})
		return 70
	}
	// Best effort: without inotify the covers still hold until something
	// outside replaces a hidden file (docs/isolation.md).
	_ = watchHidden(m.Hide)
	if err := c.send(msg{Op: opReady}); err != nil {
		return 70
	}

	type incoming struct {
		m   msg
		fds []int
		err error
	}
	in := make(chan incoming)
	go func() {
		for {
			m, fds, err := c.recv()
			in <- incoming{m, fds, err}
			if err != nil {
				return
			}
		}
	}()

	child := 0
	for {
		select {
		case r := <-in:
			if r.err != nil {
				// agentvault is gone: nothing may outlive it here.
				unix.Kill(-1, unix.SIGKILL)
				return 128 + int(unix.SIGKILL)
			}
			switch r.m.Op {
			case opListen:
				reply, fd := listen(r.m.Port)
				if fd >= 0 {
					c.send(reply, fd)
					unix.Close(fd)
				} else {
					c.send(reply)
				}
			case opExec:
				if child != 0 || len(r.fds) != 3 {
					c.send(msg{Op: opExecFailed, Step: "exec", Errno: int(unix.EINVAL)})
					break
				}
				pid, step, err := startCommand(r.m, r.fds)
				if err != nil {
					var errno syscall.Errno
					if !errors.As(err, &errno) {
						errno = unix.EPERM
					}
					c.send(msg{Op: opExecFailed, Step: step, Errno: int(errno)})
				} else {
					child = pid
					c.send(msg{Op: opStarted})
				}
			case opSignal:
				if child != 0 && r.m.Signal > 0 {
					unix.Kill(child, unix.Signal(r.m.Signal))
				}
			}
			closeFDs(r.fds)
		case s := <-sigs:
			// Signals reach PID 1 from the terminal (the command gets its
			// own copy) or from inside; agentvault forwards through the
			// socket instead. Only SIGCHLD matters here.
			if s != unix.SIGCHLD || child == 0 {
				continue
			}
			if status, done := reap(child); done {
				return status
			}
		}
	}
}

// subscribeAll catches every signal that could otherwise end PID 1 (the Go
// runtime would die of them) except those the process was started with
// ignored: they stay ignored for the command, as in host mode. A caught
// signal is reset to the default in the command by execve.
func subscribeAll(ch chan<- os.Signal) {
	on := []os.Signal{unix.SIGCHLD}
	for _, s := range []unix.Signal{
		unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGILL, unix.SIGTRAP, unix.SIGABRT,
		unix.SIGBUS, unix.SIGFPE, unix.SIGUSR1, unix.SIGSEGV, unix.SIGUSR2, unix.SIGPIPE,
		unix.SIGALRM, unix.SIGTERM, unix.SIGSTKFLT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU,
		unix.SIGXCPU, unix.SIGXFSZ, unix.SIGVTALRM, unix.SIGWINCH, unix.SIGIO, unix.SIGPWR, unix.SIGSYS,
	} {
		if !signal.Ignored(s) {
			on = append(on, s)
		}
	}
	signal.Notify(ch, on...)
}

// reap collects every exited child; done is true once the command itself
// has, with the status a shell would report.
func reap(command int) (status int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != command {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}

// listen opens 127.0.0.1:port in the sandbox's network namespace and returns
// the answer and the listener's descriptor (-1 on failure).
func listen(port int) (msg, int) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return msg{Op: opRefused, Step: stepListen, Err: err.Error()}, -1
	}
	defer ln.Close()
	f, err := ln.File() // a duplicate, so closing ln keeps it open
	if err != nil {
		return msg{Op: opRefused, Step: stepListen, Err: err.Error()}, -1
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return msg{Op: opRefused, Step: stepListen, Err: err.Error()}, -1
	}
	return msg{Op: opListening}, fd
}

// cloexecInherited marks every descriptor above the control socket
// close-on-exec. agentvault passes on whatever it inherited without the flag
// (a parent that leaks a file, a socket or a directory); the command must
// get its stdio only: a directory opened outside the sandbox reaches the
// files under it past the covers (/proc/self/fd/N/id_ed25519), and a leaked
// socket (an ssh-agent connection) past the hidden sockets.
func cloexecInherited() {
	if unix.CloseRange(4, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	// Before Linux 5.11: what /proc/self/fd lists (the host's /proc, which
	// shows this process's own table all the same).
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 3 {
			unix.CloseOnExec(fd)
		}
	}
}

// startCommand drops every capability of this thread for good and starts the
// command with the received stdio, in the process group and session of
// agentvault (the terminal's foreground group stays the command's).
func startCommand(m msg, stdio []int) (int, string, error) {
	if err := dropCapabilities(); err != nil {
		return 0, "dropping capabilities", err
	}
	pid, err := syscall.ForkExec(m.Path, m.Argv, &syscall.ProcAttr{
		Dir:   m.Dir,
		Env:   m.Env,
		Files: []uintptr{uintptr(stdio[0]), uintptr(stdio[1]), uintptr(stdio[2])},
	})
	if err != nil {
		return 0, "execve", err
	}
	return pid, "", nil
}

// The sandbox's PID 1 becomes the init as soon as this package is
// initialized: Go initializes packages in import-path order as their imports
// allow, so this runs before the heavy packages of agentvault's backends (AWS,
// Vault, gRPC), whose initialization would add milliseconds to every start
// under --isolate. cmd/agentvault's own check stays as a backstop.
func init() {
	if IsInit() {
		os.Exit(Main())
	}
}
