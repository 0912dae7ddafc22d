package backends

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
)

const (
	// minRenewWait keeps a lease with a tiny TTL from spinning the loop.
	minRenewWait = 100 * time.Millisecond
	// renewCallTimeout bounds one renewal request.
	renewCallTimeout = 10 * time.Second
	// maxRenewals bounds a renewal loop by count; time bounds it anyway,
	// as a lease capped by its max TTL stops being extended.
	maxRenewals = 1 << 20
)

// lease is a Vault lease or a login token agentvault holds. Both are
// renewed at about two thirds of their TTL and revoked at Close.
type lease struct {
	id        string        // the lease ID; "" for a login token
	token     string        // the login token itself (never printed)
	increment time.Duration // asked for at each renewal: the original TTL
	renewable bool

	mu       sync.Mutex
	expiry   time.Time // zero: no expiry (a root or periodic-less token)
	renewing bool      // a renewal loop still extends it
	dead     bool      // renewal found it revoked or expired
}

func newLease(id string, ttl time.Duration, renewable bool) *lease {
	l := &lease{id: id, increment: ttl, renewable: renewable}
	if ttl > 0 {
		l.expiry = time.Now().Add(ttl)
	}
	return l
}

// what names the lease in messages; a token is never named by its value.
func (l *lease) what() string {
	if l.id == "" {
		return "the login token"
	}
	return "lease " + l.id
}

// remaining is the lifetime left (0 when the lease has no expiry).
func (l *lease) remaining() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.expiry.IsZero() {
		return 0
	}
	return max(time.Until(l.expiry).Round(time.Second), time.Second)
}

// usable says whether the lease may still be handed out: alive, and either
// kept alive by renewal or with at least a quarter of its TTL left (after
// which a new one is taken rather than hand out a value about to expire).
func (l *lease) usable() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return false
	}
	if l.expiry.IsZero() {
		return true
	}
	left := time.Until(l.expiry)
	return left > 0 && (l.renewing || left > l.increment/4)
}

// expired reports whether the lease's TTL has run out (Vault then revoked it).
func (l *lease) expired() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.expiry.IsZero() && time.Now().After(l.expiry)
}

func (l *lease) renewWait() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(time.Until(l.expiry)*2/3, minRenewWait)
}

func (l *lease) expiryTime() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expiry
}

func (l *lease) setExpiry(t time.Time) {
	l.mu.Lock()
	l.expiry = t
	l.mu.Unlock()
}

func (l *lease) stopRenewing(dead bool) {
	l.mu.Lock()
	l.renewing = false
	l.dead = l.dead || dead
	l.mu.Unlock()
}

// dynEntry caches one leased response. Its mutex is held across a fetch, so
// concurrent resolutions of one path take a single lease.
type dynEntry struct {
	mu    sync.Mutex
	data  map[string]any
	lease *lease
}

// current returns the cached data while its lease is usable. Callers hold e.mu.
func (e *dynEntry) current() (map[string]any, *lease) {
	if e.lease == nil || !e.lease.usable() {
		return nil, nil
	}
	return e.data, e.lease
}

func (e *dynEntry) set(data map[string]any, l *lease) {
	e.data, e.lease = data, l
}

// track registers a new lease or login token for revocation and starts its
// renewal. After Close it gives the lease back at once instead.
func (b *vaultBackend) track(l *lease, isToken bool) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.revoke(ctx, l)
		return errVaultClosed
	}
	if isToken {
		b.tokens = append(b.tokens, l)
	} else {
		b.leases = append(b.leases, l)
	}
	if l.renewable && l.increment > 0 {
		l.renewing = true
		// Added under b.mu while not closed: Close's Wait cannot have started.
		b.renewWG.Add(1)
		go b.keepAlive(l)
	}
	b.mu.Unlock()
	return nil
}

// renewFunc renews once and returns the new TTL.
type renewFunc func(ctx context.Context, increment int) (time.Duration, error)

func (b *vaultBackend) renewer(l *lease) (renewFunc, error) {
	if l.id != "" {
		return func(ctx context.Context, inc int) (time.Duration, error) {
			s, err := b.client.Sys().RenewWithContext(ctx, l.id, inc)
			if err != nil {
				return 0, err
			}
			if s == nil {
				return 0, errors.New("empty renewal answer")
			}
			return time.Duration(s.LeaseDuration) * time.Second, nil
		}, nil
	}
	c, err := b.bareClient()
	if err != nil {
		return nil, err
	}
	c.SetToken(l.token)
	return func(ctx context.Context, inc int) (time.Duration, error) {
		s, err := c.Auth().Token().RenewSelfWithContext(ctx, inc)
		if err != nil {
			return 0, err
		}
		if s == nil || s.Auth == nil {
			return 0, errors.New("empty renewal answer")
		}
		return time.Duration(s.Auth.LeaseDuration) * time.Second, nil
	}, nil
}

// keepAlive renews l at about two thirds of its remaining TTL until Close,
// until Vault stops extending it (its max TTL), or until it is gone.
func (b *vaultBackend) keepAlive(l *lease) {
	defer b.renewWG.Done()
	renew, err := b.renewer(l)
	if err != nil {
		l.stopRenewing(false)
		return
	}
	inc := max(int(l.increment/time.Second), 1)
	for range maxRenewals {
		wait := l.renewWait()
		t := time.NewTimer(wait)
		select {
		case <-b.ctx.Done():
			t.Stop()
			l.stopRenewing(false)
			return
		case <-t.C:
		}
		before := l.expiryTime()
		ctx, cancel := context.WithTimeout(b.ctx, renewCallTimeout)
		ttl, err := renew(ctx, inc)
		cancel()
		if b.ctx.Err() != nil {
			l.stopRenewing(false)
			return
		}
		if err != nil {
			if permanentVaultError(err) || time.Now().After(before) {
				l.stopRenewing(true)
				return
			}
			continue // transient: retry within what is left
		}
		next := time.Now().Add(ttl)
		l.setExpiry(next)
		// Capped by its max TTL, a renewal no longer moves the expiry (Vault
		// rounds TTLs to seconds, hence the tolerance): stop asking.
		if ttl <= 0 || next.Sub(before) < wait/2 {
			l.stopRenewing(false)
			return
		}
	}
	l.stopRenewing(false)
}

// permanentVaultError is a 4xx answer (other than rate limiting): the lease
// or token is gone or not renewable, and asking again will not help.
func permanentVaultError(err error) bool {
	var re *vault.ResponseError
	return errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 &&
		re.StatusCode != http.StatusTooManyRequests
}

// Close stops renewing, revokes every lease taken and then the login
// tokens agentvault created (never a token the user supplied). It runs once;
// later calls return the first result. It revokes even when ctx is already
// cancelled (a session ending on SIGINT must still give its leases back) but
// never for longer than ctx's deadline or vaultCloseTimeout.
func (b *vaultBackend) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { b.closeErr = b.shutdown(ctx) })
	return b.closeErr
}

func (b *vaultBackend) shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	leases, tokens := b.leases, b.tokens
	b.leases, b.tokens, b.dynamic = nil, nil, nil // drop cached values
	b.mu.Unlock()
	b.cancel()
	b.renewWG.Wait()

	limit := vaultCloseTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < limit {
		limit = max(time.Until(dl), 0)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()

	leaseErrs := b.revokeAll(rctx, leases)
	tokenErrs := b.revokeAll(rctx, tokens)
	var errs []error
	for i, err := range leaseErrs {
		// A token without the right to revoke leases (the default policy
		// lacks sys/leases/revoke) still revokes them by revoking itself.
		if err != nil && !(permanentVaultError(err) && len(tokens) > 0 && vaultAllNil(tokenErrs)) {
			msg := b.apiError("revoking", leases[i].what(), err)
			var re *vault.ResponseError
			if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
				msg = fmt.Errorf("%w; the token needs update on sys/leases/revoke, else the lease ends with its TTL", msg)
			}
			errs = append(errs, msg)
		}
	}
	for _, err := range tokenErrs {
		if err != nil {
			errs = append(errs, b.apiError("revoking", "the login token", err))
		}
	}
	return errors.Join(errs...)
}

func (b *vaultBackend) revokeAll(ctx context.Context, ls []*lease) []error {
	errs := make([]error, len(ls))
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.revoke(ctx, l)
		}()
	}
	wg.Wait()
	return errs
}

func (b *vaultBackend) revoke(ctx context.Context, l *lease) error {
	if l.expired() {
		return nil // Vault has revoked it already
	}
	if l.id != "" {
		return b.client.Sys().RevokeWithContext(ctx, l.id)
	}
	c, err := b.bareClient()
	if err != nil {
		return err
	}
	c.SetToken(l.token)
	err = c.Auth().Token().RevokeSelfWithContext(ctx, "")
	var re *vault.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden && slices.Contains(re.Errors, "invalid token") {
		return nil // expired or revoked by someone else: gone either way
	}
	return err
}

func vaultAllNil(errs []error) bool {
	for _, err := range errs {
		if err != nil {
			return false
		}
	}
	return true
}

// String keeps a lease out of formatted output by value.
func (l *lease) String() string { return fmt.Sprintf("vault %s", l.what()) }
