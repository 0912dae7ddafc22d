package session

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentvault/agentvault/backends"
)

// seqBackend returns its values in turn.
type seqBackend struct {
	values []string
	calls  int
}

func (b *seqBackend) Type() string { return "env" }
func (b *seqBackend) Resolve(ctx context.Context, ref string) (backends.Secret, error) {
	v := b.values[min(b.calls, len(b.values)-1)]
	b.calls++
	return backends.Secret{Value: v}, nil
}
func (b *seqBackend) ConsumedEnv() []string           { return nil }
func (b *seqBackend) Close(ctx context.Context) error { return nil }

func TestLive(t *testing.T) {
	b := &seqBackend{values: []string{"v2", "v2", "v3"}}
	res := &Resolved{
		Credentials: []ResolvedCredential{{Credential: Credential{Name: "c", Secret: Ref{Backend: "x", Ref: "r"}, TTL: time.Minute}, Secret: backends.Secret{Value: "v1"}}},
		Backends:    map[string]backends.Backend{"x": b},
	}
	now := time.Unix(1000, 0)
	l := res.Live("c", nil)
	l.now = func() time.Time { return now }
	l.fetched, l.tried = now, now.Add(-time.Hour)

	if v := l.Value(); v != "v1" || b.calls != 0 {
		t.Fatalf("fresh value %q, %d backend calls", v, b.calls)
	}
	if ok, _ := l.Refresh(context.Background()); !ok || l.Value() != "v2" {
		t.Fatalf("refresh: changed=%v value=%q", ok, l.Value())
	}
	// Within MinRefresh: no backend call.
	if ok, _ := l.Refresh(context.Background()); ok || b.calls != 1 {
		t.Fatalf("refresh within MinRefresh called the backend (%d calls)", b.calls)
	}
	now = now.Add(MinRefresh)
	if ok, _ := l.Refresh(context.Background()); ok {
		t.Fatal("unchanged value reported as changed")
	}
	// TTL passed: Value re-resolves by itself.
	now = now.Add(2 * time.Minute)
	if v := l.Value(); v != "v3" {
		t.Fatalf("after TTL: %q", v)
	}
	if got := strings.Join(l.Seen(), ","); got != "v1,v2,v3" {
		t.Fatalf("seen %q", got)
	}
}
