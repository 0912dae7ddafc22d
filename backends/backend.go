// Package backends resolves secret references (the part of "vault:secret/x#token"
// after the backend name) to values. Each backend type lives in its own file and
// implements Backend; session picks the instance by the name before the colon.
package backends

import (
	"context"
	"time"
)

// Secret is a resolved value and what is known of its lifetime.
type Secret struct {
	Value     string
	LeaseID   string        // non-empty for leased (dynamic) secrets
	TTL       time.Duration // 0 when the backend gives no lifetime
	Renewable bool
}

// Backend resolves references for one configured backend instance.
// Implementations must be safe for concurrent use and must never put a secret
// value into an error message.
type Backend interface {
	// Type is the backend's type name as written in the config ("env", "file", "exec", ...).
	Type() string
	// Resolve returns the value that ref names. ref is everything after
	// "<backend>:" including any "?query" and "#field" suffix.
	Resolve(ctx context.Context, ref string) (Secret, error)
	// ConsumedEnv lists the environment variables this backend has read so far
	// (to authenticate or as values); the launcher removes them from the child.
	ConsumedEnv() []string
	// Close revokes what the backend leased or logged in for and releases resources.
	Close(ctx context.Context) error
}

// Options is what session hands a backend constructor.
type Options struct {
	Name string // instance name under backends:, e.g. "op"
	Type string // backend type, e.g. "exec"
	// Decode strictly decodes the backend's YAML mapping (without the "type" key)
	// into v; unknown keys and wrong types are errors that already carry file:line.
	// It is never nil; for an undeclared backend it decodes nothing.
	Decode func(v any) error
	// LookupEnv reads agentvault's own environment (os.LookupEnv in production).
	LookupEnv func(string) (string, bool)
}
