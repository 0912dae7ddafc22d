package session

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentvault/agentvault/backends"
	"github.com/agentvault/agentvault/config"
)

// seqBackend returns its values in turn; gate, when set, holds every call
// until it is closed.
type seqBackend struct {
	mu     sync.Mutex
	values []string
	calls  int
	gate   chan struct{}
}

func (b *seqBackend) Type() string { return "env" }
func (b *seqBackend) Resolve(ctx context.Context, ref string) (backends.Secret, error) {
	if b.gate != nil {
		<-b.gate
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.values[min(b.calls, len(b.values)-1)]
	b.calls++
	return backends.Secret{Value: v}, nil
}
func (b *seqBackend) n() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}
func (b *seqBackend) ConsumedEnv() []string           { return nil }
func (b *seqBackend) Close(ctx context.Context) error { return nil }

func newLive(t *testing.T, b *seqBackend, onValue func(string)) (*Live, *time.Time) {
	t.Helper()
	res := &Resolved{
		Credentials: []ResolvedCredential{{Credential: config.Credential{Name: "c", Secret: config.Ref{Backend: "x", Ref: "r"}, TTL: time.Minute}, Secret: backends.Secret{Value: "v1"}}},
		Backends:    map[string]backends.Backend{"x": b},
	}
	now := time.Unix(1000, 0)
	l := res.Live("c", nil, onValue)
	l.now = func() time.Time { return now }
	l.fetched = now
	return l, &now
}

func TestLiveTTL(t *testing.T) {
	b := &seqBackend{values: []string{"v2"}}
	l, now := newLive(t, b, nil)
	if v := l.Value(); v != "v1" || b.n() != 0 {
		t.Fatalf("fresh value %q, %d backend calls", v, b.n())
	}
	*now = now.Add(2 * time.Minute)
	if v := l.Value(); v != "v2" || b.n() != 1 {
		t.Fatalf("after TTL: %q, %d calls", v, b.n())
	}
}

// TestLiveRefreshThrottle: throttling follows what a refresh found, not the
// clock alone. A credential rotated twice in a row must heal at once; a
// refresh that found nothing new holds off the next for MinRefresh.
func TestLiveRefreshThrottle(t *testing.T) {
	type step struct {
		advance     time.Duration
		wantChanged bool
		wantCalls   int
		wantValue   string
	}
	b := &seqBackend{values: []string{"v2", "v3", "v3", "v4"}}
	var got []string
	l, now := newLive(t, b, func(v string) { got = append(got, v) })
	steps := []step{
		{0, true, 1, "v2"},            // first rotation
		{0, true, 2, "v3"},            // rotated again right away: refreshed at once
		{0, false, 3, "v3"},           // same value: now quiet
		{time.Second, false, 3, "v3"}, // quiet: no backend call
		{MinRefresh, true, 4, "v4"},   // quiet over
	}
	for i, s := range steps {
		*now = now.Add(s.advance)
		changed, err := l.Refresh(context.Background())
		if err != nil || changed != s.wantChanged || b.n() != s.wantCalls || l.Value() != s.wantValue {
			t.Fatalf("step %d: changed=%v err=%v calls=%d value=%q; want %v, %d, %q", i, changed, err, b.n(), l.Value(), s.wantChanged, s.wantCalls, s.wantValue)
		}
	}
	if s := strings.Join(got, ","); s != "v1,v2,v3,v4" {
		t.Fatalf("onValue saw %q", s)
	}
	if s := strings.Join(l.Seen(), ","); s != "v1,v2,v3,v4" {
		t.Fatalf("seen %q", s)
	}
}

// TestLiveRefreshCoalesced: a storm of refusals is one backend call, and
// every caller learns that the value changed.
func TestLiveRefreshCoalesced(t *testing.T) {
	b := &seqBackend{values: []string{"v2", "v3"}, gate: make(chan struct{})}
	l, _ := newLive(t, b, nil)
	const n = 16
	var changed atomic.Int32
	var started, wg sync.WaitGroup
	started.Add(n)
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			started.Done()
			ok, err := l.Refresh(context.Background())
			if err != nil {
				t.Error(err)
			}
			if ok {
				changed.Add(1)
			}
		}()
	}
	started.Wait()
	// Let the callers pile up on the one in-flight call, then release it.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		busy := l.inflight != nil
		l.mu.Unlock()
		if busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(b.gate)
	wg.Wait()
	if calls := b.n(); calls != 1 {
		// A caller that arrived after the call ended may start a second
		// one (the value changed, so it is allowed); more than that is a storm.
		if calls > 2 {
			t.Fatalf("%d backend calls for %d concurrent refreshes", calls, n)
		}
	}
	if changed.Load() == 0 {
		t.Fatal("no caller saw the change")
	}
	if l.Value() == "v1" {
		t.Fatal("value not updated")
	}
}

// TestLiveRefreshAhead: in the last quarter of the TTL the value is renewed
// in the background: callers get the still-valid value at once even while
// the backend is slow, and many callers start one backend call.
func TestLiveRefreshAhead(t *testing.T) {
	b := &seqBackend{values: []string{"v2"}, gate: make(chan struct{})}
	l, now := newLive(t, b, nil)
	*now = now.Add(50 * time.Second) // TTL is a minute: 3/4 gone
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if v := l.Value(); v != "v1" {
					t.Errorf("while renewing: %q, want the current v1", v)
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Value waited for the backend before the TTL ran out")
	}
	close(b.gate)
	deadline := time.Now().Add(10 * time.Second)
	for l.Value() != "v2" {
		if time.Now().After(deadline) {
			t.Fatal("the background renewal never landed")
		}
		time.Sleep(time.Millisecond)
	}
	if n := b.n(); n != 1 {
		t.Fatalf("%d backend calls, want 1", n)
	}
}

// orderBackend notes whether Close came while a Resolve was still running.
type orderBackend struct {
	seqBackend
	resolving    atomic.Bool
	closedDuring atomic.Bool
	closed       atomic.Bool
}

func (b *orderBackend) Resolve(ctx context.Context, ref string) (backends.Secret, error) {
	b.resolving.Store(true)
	defer b.resolving.Store(false)
	return b.seqBackend.Resolve(ctx, ref)
}

func (b *orderBackend) Close(ctx context.Context) error {
	b.closedDuring.Store(b.resolving.Load())
	b.closed.Store(true)
	return nil
}

// TestResolvedCloseWaitsForReresolve: a background renewal still talking to
// a backend when the session ends finishes before the backend is closed
// (which revokes its leases), and none starts afterwards: a lease opened
// after the revocation would outlive the session.
func TestResolvedCloseWaitsForReresolve(t *testing.T) {
	b := &orderBackend{seqBackend: seqBackend{values: []string{"v2"}, gate: make(chan struct{})}}
	res := &Resolved{
		Credentials: []ResolvedCredential{{Credential: config.Credential{Name: "c", Secret: config.Ref{Backend: "x", Ref: "r"}}, Secret: backends.Secret{Value: "v1"}}},
		Backends:    map[string]backends.Backend{"x": b},
	}
	started := make(chan struct{})
	go func() {
		close(started)
		res.Reresolve(context.Background(), "c")
	}()
	<-started
	for !b.resolving.Load() {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error)
	go func() { closed <- res.Close(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	if b.closed.Load() {
		t.Fatal("backend closed while a re-resolution was in flight")
	}
	close(b.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if b.closedDuring.Load() || !b.closed.Load() {
		t.Fatalf("closed during a resolve: %v, closed: %v", b.closedDuring.Load(), b.closed.Load())
	}
	if _, err := res.Reresolve(context.Background(), "c"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("re-resolution after Close: %v", err)
	}
}
