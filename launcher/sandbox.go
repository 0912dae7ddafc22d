package launcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
)

// Sandbox starts the child somewhere other than agentvault's own namespaces
// (package launcher/isolate). Run gives it the resolved path and the
// child's stdio files; the child must not start unless it is inside.
type Sandbox interface {
	Start(path string, argv, env []string, dir string, stdio [3]*os.File) (Process, error)
}

// Process is a child started by a Sandbox. Signal reaches the command
// itself, Kill ends it and everything it started, Wait returns once it is
// gone, with a state whose ExitStatus is the command's.
type Process interface {
	Signal(os.Signal) error
	Kill() error
	Wait() (*os.ProcessState, error)
}

// runSandboxed is Run for a child in c.Sandbox: the same signal rules and
// exit statuses, with the sandbox standing in for os/exec.
func runSandboxed(ctx context.Context, c Cmd, path string) (int, error) {
	var stdio [3]*os.File
	for i, s := range []any{c.Stdin, c.Stdout, c.Stderr} {
		def := []*os.File{os.Stdin, os.Stdout, os.Stderr}[i]
		switch f := s.(type) {
		case nil:
			stdio[i] = def
		case *os.File:
			stdio[i] = f
		default:
			// A pipe and a copying goroutine would be needed; no caller
			// wants that.
			err := &StartError{Code: codeNotExecutable, Name: c.Argv[0], Err: fmt.Errorf("a sandboxed child's stdio must be files, not %T", s)}
			return err.Code, err
		}
	}
	env := c.Env
	if env == nil {
		env = []string{}
	}

	sigs := make(chan os.Signal, 4)
	subscribe(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	p, err := c.Sandbox.Start(path, c.Argv, env, c.Dir, stdio)
	if err != nil {
		se := &StartError{Code: codeNotExecutable, Name: c.Argv[0], Err: err}
		if errors.Is(err, fs.ErrNotExist) {
			se.Code = codeNotFound
		}
		return se.Code, se
	}
	waitc := make(chan error, 1)
	var state *os.ProcessState
	go func() {
		var err error
		state, err = p.Wait()
		waitc <- err
	}()
	if err := supervise(ctx, sigs, p, waitc); err != nil {
		return ExitStatus(state), fmt.Errorf("sandbox: %w", err)
	}
	return ExitStatus(state), nil
}
