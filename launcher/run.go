package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Cmd describes the child to run.
type Cmd struct {
	Argv           []string  // Argv[0] is looked up in the PATH of Env
	Env            []string  // the complete child environment; nil means empty, never inherited
	Dir            string    // working directory; "" = agentvault's
	Stdin          io.Reader // nil = os.Stdin
	Stdout, Stderr io.Writer // nil = os.Stdout / os.Stderr
	// Sandbox, when set, starts the child inside it (--isolate); stdio must
	// then be nil or *os.File. nil runs the child directly.
	Sandbox Sandbox
}

// StartError is a failure to start the child. Code is the shell convention
// agentvault exits with: 127 not found, 126 found but not executable.
type StartError struct {
	Code int
	Name string // the command as given
	Err  error
}

func (e *StartError) Error() string {
	if e.Name == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", e.Name, e.Err)
}
func (e *StartError) Unwrap() error { return e.Err }

const (
	codeNotExecutable = 126
	codeNotFound      = 127
)

// defaultPath is what execvp (glibc) searches when PATH is unset.
const defaultPath = "/bin:/usr/bin"

var (
	// killGrace is how long a child has to exit after SIGTERM on cancellation.
	killGrace = 5 * time.Second
	// ioGrace bounds how long Wait waits for stdio copying after the child
	// exits, so a grandchild holding a pipe open cannot hang agentvault.
	ioGrace = 2 * time.Second
)

// Resolve looks argv0 up the way a shell would, but in the child's PATH (from
// env), not agentvault's. A name containing a slash is used as is. In a PATH
// search, directories are skipped and a non-executable file only counts when
// nothing executable follows it (bash's rules). Relative PATH entries,
// including the empty one, are ignored, as os/exec does since Go 1.19, so a
// repository cannot plant a binary the agent launcher would pick up.
func Resolve(argv0 string, env []string) (string, error) {
	return resolveIn(argv0, env, "")
}

func resolveIn(argv0 string, env []string, dir string) (string, error) {
	if argv0 == "" {
		return "", &StartError{Code: codeNotFound, Name: argv0, Err: errors.New("empty command")}
	}
	if strings.ContainsRune(argv0, '/') {
		p := argv0
		if dir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(dir, p) // exec resolves a relative Path against Dir
		}
		if err := checkExecutable(p); err != nil {
			return "", err.withName(argv0)
		}
		return argv0, nil
	}

	pathVar, ok := parseEnv(env)["PATH"]
	if !ok {
		pathVar = defaultPath
	}
	var denied *StartError
	var relativeHit string
	dirs := filepath.SplitList(pathVar)
	if pathVar == "" {
		dirs = []string{""} // POSIX: an empty PATH names the current directory
	}
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			if d == "" {
				d = "."
			}
			if relativeHit == "" && checkExecutable(filepath.Join(dir, d, argv0)) == nil {
				relativeHit = filepath.Join(d, argv0)
			}
			continue
		}
		p := filepath.Join(d, argv0)
		err := checkExecutable(p)
		switch {
		case err == nil:
			return p, nil
		case err.Code == codeNotExecutable && !err.isDir && denied == nil:
			denied = err.withName(p)
		}
	}
	if denied != nil {
		return "", denied
	}
	msg := "command not found in the child's PATH"
	if relativeHit != "" {
		msg += fmt.Sprintf(" (relative PATH entries are ignored; use ./%s)", relativeHit)
	}
	return "", &StartError{Code: codeNotFound, Name: argv0, Err: errors.New(msg)}
}

type checkErr struct {
	StartError
	isDir bool
}

func (e *checkErr) withName(name string) *StartError {
	se := e.StartError
	se.Name = name
	return &se
}

// checkExecutable applies the mode bits, as the shells do; a root caller is
// no exception, since execve refuses a file with no x bit even to root.
func checkExecutable(p string) *checkErr {
	fi, err := os.Stat(p)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the caller names the path
	}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return &checkErr{StartError: StartError{Code: codeNotFound, Err: errors.New("no such file or directory")}}
	case err != nil:
		return &checkErr{StartError: StartError{Code: codeNotExecutable, Err: err}}
	case fi.IsDir():
		return &checkErr{StartError: StartError{Code: codeNotExecutable, Err: errors.New("is a directory")}, isDir: true}
	case fi.Mode()&0o111 == 0:
		return &checkErr{StartError: StartError{Code: codeNotExecutable, Err: errors.New("permission denied (not executable)")}}
	}
	return nil
}

// Run starts the child and returns its exit status (128+N if it died of
// signal N). err is non-nil only if the child could not be started (a
// *StartError, whose Code is also returned as status) or its stdio copying
// failed.
//
// The child shares agentvault's terminal and process group, so terminal
// signals (Ctrl-C, Ctrl-\, Ctrl-Z, window resizes) reach it directly; while
// it runs agentvault survives SIGINT and SIGQUIT rather than die and leave it
// orphaned, and forwards them only when they cannot have come from the
// terminal (agentvault is not the terminal's foreground group: CI runners,
// supervisors), so a Ctrl-C never arrives twice. SIGTERM and SIGHUP, usually
// aimed at agentvault alone, are always forwarded. Cancelling ctx sends SIGTERM, then SIGKILL after 5s; the
// status is still the child's (the caller knows its ctx was cancelled).
// Callers should not turn SIGINT or SIGTERM into a cancellation while Run is
// running: Run already handles both.
func Run(ctx context.Context, c Cmd) (int, error) {
	if len(c.Argv) == 0 {
		err := &StartError{Code: codeNotFound, Err: errors.New("empty command")}
		return err.Code, err
	}
	path, err := resolveIn(c.Argv[0], c.Env, c.Dir)
	if err != nil {
		var se *StartError
		errors.As(err, &se)
		return se.Code, err
	}
	if c.Sandbox != nil {
		return runSandboxed(ctx, c, path)
	}

	env := c.Env
	if env == nil {
		env = []string{} // nil would make os/exec pass agentvault's environment
	}
	cmd := &exec.Cmd{
		Path:      path,
		Args:      c.Argv,
		Env:       env,
		Dir:       c.Dir,
		Stdin:     c.Stdin,
		Stdout:    c.Stdout,
		Stderr:    c.Stderr,
		WaitDelay: ioGrace,
	}
	// Passing the *os.File itself gives the child the terminal, not a pipe.
	if cmd.Stdin == nil {
		cmd.Stdin = os.Stdin
	}
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}

	// Subscribe before Start, so that no signal can kill agentvault with its
	// default action once the child exists.
	sigs := make(chan os.Signal, 4)
	subscribe(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	if err := cmd.Start(); err != nil {
		se := &StartError{Code: codeNotExecutable, Name: c.Argv[0], Err: err}
		if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) {
			se.Code = codeNotFound // removed since Resolve
		}
		return se.Code, se
	}

	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()
	return finish(cmd, supervise(ctx, sigs, cmd.Process, waitc))
}

// signaler is the child as supervise needs it: an *os.Process, or a
// sandboxed Process.
type signaler interface {
	Signal(os.Signal) error
	Kill() error
}

// supervise applies Run's signal rules to p until waitc delivers the result
// of waiting for it, and returns that result.
func supervise(ctx context.Context, sigs <-chan os.Signal, p signaler, waitc <-chan error) error {
	ctxDone := ctx.Done()
	var kill <-chan time.Time
	for {
		select {
		case werr := <-waitc:
			return werr
		case s := <-sigs:
			if s == syscall.SIGTERM || s == syscall.SIGHUP || !inForeground() {
				_ = p.Signal(s) // ErrProcessDone is fine: Wait reports it
			}
		case <-ctxDone:
			ctxDone = nil
			_ = p.Signal(syscall.SIGTERM)
			t := time.NewTimer(killGrace)
			defer t.Stop()
			kill = t.C
		case <-kill:
			kill = nil
			_ = p.Kill()
		}
	}
}

// subscribe routes the signals to ch, except those agentvault was started
// with ignored (nohup, background jobs of a non-interactive shell):
// subscribing would un-ignore them for the child too, which inherits only
// ignored dispositions across execve.
func subscribe(ch chan<- os.Signal, sigs ...os.Signal) {
	var on []os.Signal
	for _, s := range sigs {
		if !signal.Ignored(s) {
			on = append(on, s)
		}
	}
	if len(on) > 0 {
		signal.Notify(ch, on...)
	}
}

func finish(cmd *exec.Cmd, werr error) (int, error) {
	status := ExitStatus(cmd.ProcessState)
	var exitErr *exec.ExitError
	switch {
	case werr == nil, errors.As(werr, &exitErr), errors.Is(werr, exec.ErrWaitDelay):
		return status, nil
	default:
		return status, fmt.Errorf("child stdio: %w", werr)
	}
}

// ExitStatus is the status a shell would report for state: the exit code, or
// 128+N for death by signal N; -1 if state is nil or not finished.
func ExitStatus(state *os.ProcessState) int {
	if state == nil {
		return -1
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}
