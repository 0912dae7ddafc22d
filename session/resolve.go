package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/agentvault/agentvault/backends"
	"github.com/agentvault/agentvault/config"
)

// Opener constructs a backend instance; production passes backends.Open.
type Opener func(backends.Options) (backends.Backend, error)

// ResolveError is a credential that could not be resolved. The CLI maps it to
// exit status 69. It names the credential, backend and reference, never a value.
type ResolveError struct {
	Credential string
	Backend    string
	Ref        string
	Err        error
}

func (e *ResolveError) Error() string {
	return fmt.Sprintf("credential %q: backend %s (%s): %v", e.Credential, e.Backend, e.Ref, e.Err)
}

func (e *ResolveError) Unwrap() error { return e.Err }

// ResolvedCredential is a credential with its value and session placeholder.
type ResolvedCredential struct {
	config.Credential
	Secret      backends.Secret
	Placeholder string
	Backend     string // backend type, e.g. "vault"
}

// Resolved holds a session's credentials and the backends that produced them;
// the backends stay open for re-resolution and lease renewal until Close.
// Reresolve and Consumed may run concurrently with each other (backends are
// safe for concurrent use), but not with Close.
type Resolved struct {
	Credentials []ResolvedCredential
	Backends    map[string]backends.Backend // by instance name

	// Re-resolutions run on other goroutines (a credential's TTL renewal,
	// a refusal's refresh); Close waits for those in flight and refuses new
	// ones, so none can open a lease after the leases were revoked.
	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

// ErrEmptySecret is returned when a backend yields an empty value: injecting
// it would be useless and the leak guard cannot look for it.
var ErrEmptySecret = errors.New("the secret is empty")

// opener opens each backend instance at most once.
type opener struct {
	cfg       *config.Config
	open      Opener
	lookupEnv func(string) (string, bool)
	opened    map[string]backends.Backend
	failed    map[string]error
}

func newOpener(cfg *config.Config, open Opener, lookupEnv func(string) (string, bool)) *opener {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	return &opener{cfg: cfg, open: open, lookupEnv: lookupEnv,
		opened: map[string]backends.Backend{}, failed: map[string]error{}}
}

func (o *opener) get(name string) (backends.Backend, string, error) {
	bc, ok := o.cfg.LookupBackend(name)
	if !ok {
		// config.Parse refuses this; a hand-built Config may not.
		return nil, name, fmt.Errorf("backend %q is not configured", name)
	}
	if b, ok := o.opened[name]; ok {
		return b, bc.Type, nil
	}
	if err, ok := o.failed[name]; ok {
		return nil, bc.Type, err
	}
	b, err := o.open(backends.Options{Name: name, Type: bc.Type, Decode: bc.Decode, LookupEnv: o.lookupEnv})
	if err == nil && b == nil {
		err = errors.New("backend constructor returned nothing")
	}
	if err != nil {
		o.failed[name] = err
		return nil, bc.Type, err
	}
	o.opened[name] = b
	return b, bc.Type, nil
}

func (o *opener) resolve(ctx context.Context, c config.Credential) (backends.Secret, string, error) {
	b, typ, err := o.get(c.Secret.Backend)
	if err == nil {
		var s backends.Secret
		s, err = b.Resolve(ctx, c.Secret.Ref)
		if err == nil && s.Value == "" {
			err = ErrEmptySecret
		}
		if err == nil {
			return s, typ, nil
		}
	}
	return backends.Secret{}, typ, &ResolveError{Credential: c.Name, Backend: c.Secret.Backend, Ref: c.Secret.Ref, Err: err}
}

func closeAll(ctx context.Context, m map[string]backends.Backend) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		if err := m[n].Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("backend %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// Resolve opens each backend the credentials use (once per instance) and
// resolves every credential in config order, giving each a placeholder.
// lookupEnv nil means os.LookupEnv. On
// the first failure it closes what it opened (revoking leases) and returns a
// *ResolveError.
func Resolve(ctx context.Context, cfg *config.Config, open Opener, lookupEnv func(string) (string, bool)) (*Resolved, error) {
	o := newOpener(cfg, open, lookupEnv)
	r := &Resolved{Backends: o.opened}
	for _, c := range cfg.Credentials {
		s, typ, err := o.resolve(ctx, c)
		if err != nil {
			// The resolution error is the one to report; a close error here
			// would only hide it.
			_ = closeAll(context.WithoutCancel(ctx), o.opened)
			return nil, err
		}
		r.Credentials = append(r.Credentials, ResolvedCredential{
			Credential:  c,
			Secret:      s,
			Placeholder: Placeholder(c, s.Value),
			Backend:     typ,
		})
	}
	return r, nil
}

// Consumed lists, sorted and without repeats, the environment variables the
// backends read; the launcher removes them from the child's environment.
func (r *Resolved) Consumed() []string {
	seen := map[string]bool{}
	var out []string
	for _, b := range r.Backends {
		for _, v := range b.ConsumedEnv() {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Reresolve fetches a credential's value again through the same backend
// instance (for rotation after a 401/403 or an expired TTL). It does not
// change r; the caller decides what to do with a new value.
func (r *Resolved) Reresolve(ctx context.Context, name string) (backends.Secret, error) {
	for _, rc := range r.Credentials {
		if rc.Name != name {
			continue
		}
		ref := &ResolveError{Credential: name, Backend: rc.Credential.Secret.Backend, Ref: rc.Credential.Secret.Ref}
		r.mu.Lock()
		b, ok := r.Backends[rc.Credential.Secret.Backend]
		if !ok || r.closed {
			r.mu.Unlock()
			ref.Err = errors.New("backend is closed")
			return backends.Secret{}, ref
		}
		r.inflight.Add(1)
		r.mu.Unlock()
		defer r.inflight.Done()
		s, err := b.Resolve(ctx, rc.Credential.Secret.Ref)
		if err == nil && s.Value == "" {
			err = ErrEmptySecret
		}
		if err != nil {
			ref.Err = err
			return backends.Secret{}, ref
		}
		return s, nil
	}
	return backends.Secret{}, fmt.Errorf("no credential named %q", name)
}

// Close closes every backend (revoking leases) and forgets them, once the
// re-resolutions in flight are done (or ctx ends); later ones fail.
func (r *Resolved) Close(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	err := closeAll(ctx, r.Backends)
	r.mu.Lock()
	r.Backends = map[string]backends.Backend{}
	r.mu.Unlock()
	return err
}
