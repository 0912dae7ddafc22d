package backends

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	defaultExecTimeout = 30 * time.Second
	// maxStderrInError keeps a chatty command from flooding the one-line error.
	maxStderrInError = 200
	// waitDelay bounds Wait after a kill: a grandchild (a shell's sleep, an
	// agent) may hold stdout open long after the command itself died.
	waitDelay = time.Second
)

// execConfig is the YAML of an exec backend. Timeout is a time.Duration so
// yaml.v3 parses Go syntax ("90s") and reports a bad value with its line.
// Env names the variables of agentvault's environment the helper needs
// beyond the base ones (e.g. OP_SERVICE_ACCOUNT_TOKEN).
type execConfig struct {
	Command []string      `yaml:"command"`
	Timeout time.Duration `yaml:"timeout"`
	Env     []string      `yaml:"env"`
}

// execBackend runs a command whose stdout is the secret: the reference is
// appended as the last argument (e.g. ["op", "read"] + "op://vault/item/field").
type execBackend struct {
	typ     string
	name    string
	command []string
	timeout time.Duration
	// env is the helper's whole environment, fixed at open; see helperEnv.
	env []string
	// declared are the config's env: names, sorted: the launcher withholds
	// them from the child whether or not they were set.
	declared []string
}

func openExec(o Options) (Backend, error) {
	var c execConfig
	if err := o.Decode(&c); err != nil {
		return nil, err
	}
	if len(c.Command) == 0 || c.Command[0] == "" {
		return nil, fmt.Errorf("backend %q: command is required (a non-empty list, e.g. [op, read])", o.Name)
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("backend %q: timeout must not be negative", o.Name)
	}
	if c.Timeout == 0 {
		c.Timeout = defaultExecTimeout
	}
	declared, err := execDeclaredEnv(o.Name, c.Env)
	if err != nil {
		return nil, err
	}
	return &execBackend{
		typ: o.Type, name: o.Name, command: c.Command, timeout: c.Timeout,
		env: helperEnv(o.LookupEnv, declared), declared: declared,
	}, nil
}

func (b *execBackend) Type() string { return b.typ }

func (b *execBackend) Resolve(ctx context.Context, ref string) (Secret, error) {
	base, field := SplitField(ref)
	if base == "" {
		return Secret{}, fmt.Errorf("empty reference %q", ref)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, b.timeout)
	defer cancel()

	// No shell: the reference is one argv element whatever it contains.
	args := append(append([]string{}, b.command[1:]...), base)
	cmd := exec.CommandContext(ctx, b.command[0], args...)
	// Stdin stays nil, which os/exec connects to the null device, so a
	// command that would prompt on stdin fails instead of hanging.
	stdout := &limitedBuffer{limit: maxFileSize}
	stderr := &limitedBuffer{limit: 4096, discard: true}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = waitDelay
	// Never nil: a nil Env would hand the helper agentvault's whole
	// environment, and with it every secret an env: reference read.
	cmd.Env = append([]string{}, b.env...)

	what := fmt.Sprintf("command %q", b.command[0])
	err := cmd.Run()
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return Secret{}, fmt.Errorf("%s not found in PATH", what)
	case parent.Err() != nil:
		return Secret{}, fmt.Errorf("%s: %w", what, parent.Err())
	case ctx.Err() != nil:
		return Secret{}, fmt.Errorf("%s timed out after %s", what, b.timeout)
	case stdout.overflow:
		return Secret{}, fmt.Errorf("%s printed more than 1 MiB", what)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg := stderrSummary(stderr.Bytes(), stdout.Bytes())
			if msg != "" {
				msg = ": " + msg
			}
			// ExitError.String gives "exit status N" or "signal: killed".
			return Secret{}, fmt.Errorf("%s failed (%s)%s", what, ee.ProcessState.String(), msg)
		}
		return Secret{}, fmt.Errorf("%s: %v", what, err)
	}
	v := trimOneNewline(stdout.String())
	if v == "" {
		return Secret{}, fmt.Errorf("%s printed nothing", what)
	}
	v, err = applyField(v, field)
	if err != nil {
		return Secret{}, fmt.Errorf("%s output: %w", what, err)
	}
	return Secret{Value: v}, nil
}

// stderrSummary makes the command's stderr fit one error line. Whatever the
// command printed on stdout is masked in it, in case a failing command echoes
// the value it had started to print.
func stderrSummary(stderr, stdout []byte) string {
	s := string(stderr)
	if out := strings.TrimSpace(string(stdout)); out != "" {
		s = strings.ReplaceAll(s, out, "[redacted]")
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxStderrInError {
		cut := maxStderrInError
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// ConsumedEnv lists the variables the config declared for the helper: they
// are its credentials (a service-account token), so the agent gets none.
func (b *execBackend) ConsumedEnv() []string       { return append([]string(nil), b.declared...) }
func (b *execBackend) Close(context.Context) error { return nil }

// limitedBuffer keeps at most limit bytes. Past it, it either drops the rest
// (stderr, only a summary is shown) or fails the write (stdout, a truncated
// secret must not pass as a good one). The buffer is a named field, not
// embedded: an embedded bytes.Buffer would lend its ReadFrom to io.Copy,
// which would then bypass Write and its limit.
type limitedBuffer struct {
	buf      bytes.Buffer
	limit    int
	discard  bool
	overflow bool
}

func (w *limitedBuffer) Bytes() []byte  { return w.buf.Bytes() }
func (w *limitedBuffer) String() string { return w.buf.String() }

func (w *limitedBuffer) Write(p []byte) (int, error) {
	room := w.limit - w.buf.Len()
	if len(p) <= room {
		return w.buf.Write(p)
	}
	if room > 0 {
		w.buf.Write(p[:room])
	}
	if w.discard {
		return len(p), nil
	}
	w.overflow = true
	return 0, errors.New("output too large")
}
