package session

import (
	"context"
	"sync"
	"time"
)

// Live is one credential's current value during a session. It re-resolves
// the credential when its TTL (the credential's ttl:, else the backend's
// lease, else DefaultTTL) is three quarters gone, in the background, so a
// request never waits for a backend while the value it holds is still
// valid; once the TTL has passed (nothing asked for the value in its last
// quarter, or that refresh failed) the next caller waits for a new one. It
// also re-resolves on demand after an upstream refused the value.
//
// An agent can trigger on-demand refreshes at will (every 401 it provokes),
// so they are kept cheap without leaving a rotated credential broken:
//   - concurrent refreshes share one backend call (a 401 storm is one call);
//   - after a refresh that found the same value (or failed), further
//     refreshes wait MinRefresh;
//   - after a refresh that found a new value, the next refusal may refresh
//     again at once, so a credential rotated twice in quick succession heals.
type Live struct {
	res     *Resolved
	name    string
	ttl     time.Duration
	onValue func(string) // told of every value the credential takes

	mu       sync.Mutex
	value    string
	fetched  time.Time
	quiet    time.Time // no refresh (on demand or by TTL) before this
	inflight *refreshCall
	ahead    bool // a background refresh is started and not yet done
	seen     []string
	now      func() time.Time
	warn     func(string)
}

// refreshCall is one backend re-resolution that concurrent callers share.
type refreshCall struct {
	done    chan struct{}
	changed bool
	err     error
}

// MinRefresh is the shortest interval between two re-resolutions of one
// credential after a re-resolution that brought no new value.
const MinRefresh = 10 * time.Second

// Live returns the live value of the credential named name. warn receives
// re-resolution failures (the old value stays in use); onValue is told of
// the first value and of every new one (to mask it in output). Both may be
// nil; neither is called with the Live's lock held.
func (r *Resolved) Live(name string, warn, onValue func(string)) *Live {
	for _, rc := range r.Credentials {
		if rc.Name == name {
			if onValue != nil {
				onValue(rc.Secret.Value)
			}
			return &Live{res: r, name: name, ttl: rc.Credential.EffectiveTTL(rc.Secret.TTL), value: rc.Secret.Value,
				fetched: time.Now(), seen: []string{rc.Secret.Value}, now: time.Now, warn: warn, onValue: onValue}
		}
	}
	return nil
}

// Value returns the current value. In the last quarter of the TTL it
// starts one background re-resolution and returns at once; past the TTL it
// re-resolves first.
func (l *Live) Value() string {
	l.mu.Lock()
	age := l.now().Sub(l.fetched)
	expired := l.ttl > 0 && age >= l.ttl
	ahead := l.ttl > 0 && !expired && age >= l.ttl-l.ttl/4 && !l.ahead && l.inflight == nil && !l.now().Before(l.quiet)
	if ahead {
		l.ahead = true
	}
	v := l.value
	l.mu.Unlock()
	if ahead {
		go l.refreshAhead()
		return v
	}
	if !expired {
		return v
	}
	l.refreshWarn()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.value
}

// refreshAhead is the background re-resolution Value starts before the TTL
// runs out.
func (l *Live) refreshAhead() {
	l.refreshWarn()
	l.mu.Lock()
	l.ahead = false
	l.mu.Unlock()
}

func (l *Live) refreshWarn() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, err := l.refresh(ctx)
	cancel()
	if err != nil && l.warn != nil {
		l.warn("re-resolving " + l.name + " for its TTL failed; the old value stays in use: " + err.Error())
	}
}

// Refresh resolves the credential again and reports whether the value
// changed. A caller that arrives while another refresh runs gets that
// refresh's answer.
func (l *Live) Refresh(ctx context.Context) (bool, error) { return l.refresh(ctx) }

func (l *Live) refresh(ctx context.Context) (bool, error) {
	l.mu.Lock()
	if c := l.inflight; c != nil {
		l.mu.Unlock()
		select {
		case <-c.done:
			return c.changed, c.err
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if l.now().Before(l.quiet) {
		l.mu.Unlock()
		return false, nil
	}
	c := &refreshCall{done: make(chan struct{})}
	l.inflight = c
	l.mu.Unlock()

	s, err := l.res.Reresolve(ctx, l.name)

	l.mu.Lock()
	now := l.now()
	switch {
	case err != nil:
		c.err = err
		l.quiet = now.Add(MinRefresh)
	case s.Value == l.value:
		l.fetched = now
		l.quiet = now.Add(MinRefresh)
	default:
		l.fetched = now
		l.value = s.Value
		l.seen = append(l.seen, s.Value)
		c.changed = true
	}
	l.inflight = nil
	l.mu.Unlock()
	if c.changed && l.onValue != nil {
		l.onValue(s.Value)
	}
	close(c.done)
	return c.changed, c.err
}

// Seen returns every value the credential has had this session.
func (l *Live) Seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}
