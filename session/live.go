package session

import (
	"context"
	"sync"
	"time"
)

// Live is one credential's current value during a session. It re-resolves
// the credential once its TTL has passed (the credential's ttl:, else the
// backend's lease, else DefaultTTL) and on demand after an upstream refused
// it, at most once per MinRefresh so a misbehaving agent cannot hammer the
// backend.
type Live struct {
	res  *Resolved
	name string
	ttl  time.Duration

	mu      sync.Mutex
	value   string
	fetched time.Time
	tried   time.Time
	seen    []string
	now     func() time.Time
	warn    func(string)
}

// MinRefresh is the shortest interval between two on-demand re-resolutions
// of one credential.
const MinRefresh = 10 * time.Second

// Live returns the live value of the credential named name. warn receives
// re-resolution failures (the old value stays in use); it may be nil.
func (r *Resolved) Live(name string, warn func(string)) *Live {
	for _, rc := range r.Credentials {
		if rc.Name == name {
			return &Live{res: r, name: name, ttl: rc.Credential.EffectiveTTL(rc.Secret.TTL), value: rc.Secret.Value,
				fetched: time.Now(), seen: []string{rc.Secret.Value}, now: time.Now, warn: warn}
		}
	}
	return nil
}

// Value returns the current value, re-resolving it first if its TTL passed.
func (l *Live) Value() string {
	l.mu.Lock()
	var failure error
	if l.ttl > 0 && l.now().Sub(l.fetched) >= l.ttl && l.now().Sub(l.tried) >= MinRefresh {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, failure = l.refreshLocked(ctx)
		cancel()
	}
	v := l.value
	l.mu.Unlock()
	// warn may call back into Seen (to mask its text): not under l.mu.
	if failure != nil && l.warn != nil {
		l.warn("re-resolving " + l.name + " after its TTL failed; the old value stays in use: " + failure.Error())
	}
	return v
}

// Refresh resolves the credential again and reports whether the value changed.
func (l *Live) Refresh(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.now().Sub(l.tried) < MinRefresh {
		return false, nil
	}
	return l.refreshLocked(ctx)
}

func (l *Live) refreshLocked(ctx context.Context) (bool, error) {
	l.tried = l.now()
	s, err := l.res.Reresolve(ctx, l.name)
	if err != nil {
		return false, err
	}
	l.fetched = l.now()
	if s.Value == l.value {
		return false, nil
	}
	l.value = s.Value
	l.seen = append(l.seen, s.Value)
	return true, nil
}

// Seen returns every value the credential has had this session, so that
// output can mask an old value as well as the current one.
func (l *Live) Seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}
