package session

import (
	"context"
	"time"

	"github.com/agentvault/agentvault/config"
)

// CheckResult is one row of `agentvault check`. It never holds the value.
type CheckResult struct {
	Name        string
	Backend     string // instance name, as written before the colon
	BackendType string
	Ref         string
	Hosts       []string
	TTL         time.Duration // effective TTL (credential, else lease, else DefaultTTL)
	Leased      bool          // the backend handed out a lease (revoked again by Check)
	Err         error         // nil when resolved; a *ResolveError otherwise
}

// OK reports whether the credential resolved.
func (r CheckResult) OK() bool { return r.Err == nil }

// Check resolves every credential, not stopping at failures, and closes the
// backends afterwards (revoking any lease it took). The returned error is
// only about closing; per-credential failures are in the results.
func Check(ctx context.Context, cfg *config.Config, open Opener, lookupEnv func(string) (string, bool)) ([]CheckResult, error) {
	o := newOpener(cfg, open, lookupEnv)
	results := make([]CheckResult, 0, len(cfg.Credentials))
	for _, c := range cfg.Credentials {
		s, typ, err := o.resolve(ctx, c)
		results = append(results, CheckResult{
			Name:        c.Name,
			Backend:     c.Secret.Backend,
			BackendType: typ,
			Ref:         c.Secret.Ref,
			Hosts:       append([]string(nil), c.Hosts...),
			TTL:         c.EffectiveTTL(s.TTL),
			Leased:      s.LeaseID != "",
			Err:         err,
		})
	}
	return results, closeAll(context.WithoutCancel(ctx), o.opened)
}
