package session

import (
	"errors"
	"fmt"

	"github.com/agentvault/agentvault/config"
)

// Failure says what a session failed at. The CLI maps each kind to its exit
// status, so a new failure picks a kind rather than a number.
type Failure int

const (
	// FailInternal is agentvault's own failure: the session CA, its
	// directory, the proxy, the sandbox machinery.
	FailInternal Failure = iota + 1
	// FailConfig is the user's setup: the config, trusted roots, the audit
	// log path, an isolation refusal, --strict refusing to start.
	FailConfig
	// FailUnavailable is a credential that could not be resolved or used.
	FailUnavailable
	// FailStart is a command that could not start. A launcher.StartError in
	// the chain carries the shell's status (126, 127); without one it is
	// agentvault's own failure.
	FailStart
)

// RunError is a session that failed before or while starting its command.
// Its message is one line without the "agentvault: " prefix and never holds
// a secret value.
type RunError struct {
	Kind Failure
	Err  error
}

func (e *RunError) Error() string { return e.Err.Error() }
func (e *RunError) Unwrap() error { return e.Err }

func runErr(kind Failure, format string, args ...any) error {
	return &RunError{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// ConfigFailure wraps an error of Load, Resolve or Check as a FailConfig. A
// ConfigError already names its file and line; anything else is said to be
// about the config.
func ConfigFailure(err error) error {
	var ce *config.ConfigError
	if errors.As(err, &ce) {
		return &RunError{Kind: FailConfig, Err: err}
	}
	return runErr(FailConfig, "config: %w", err)
}
