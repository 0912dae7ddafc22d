package backends

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// envBackend reads agentvault's own environment: env:NAME[#field].
type envBackend struct {
	typ    string
	lookup func(string) (string, bool)

	mu       sync.Mutex
	consumed map[string]bool
}

func openEnv(o Options) (Backend, error) {
	if err := noOptions(o); err != nil {
		return nil, err
	}
	return &envBackend{typ: o.Type, lookup: o.LookupEnv, consumed: map[string]bool{}}, nil
}

func (b *envBackend) Type() string { return b.typ }

func (b *envBackend) Resolve(ctx context.Context, ref string) (Secret, error) {
	if err := ctx.Err(); err != nil {
		return Secret{}, err
	}
	name, field := SplitField(ref)
	if name == "" {
		return Secret{}, fmt.Errorf("empty environment variable name in reference %q", ref)
	}
	if strings.ContainsAny(name, "=\x00") {
		return Secret{}, fmt.Errorf("invalid environment variable name %q", name)
	}
	v, ok := b.lookup(name)
	if !ok {
		return Secret{}, fmt.Errorf("environment variable %s is not set", name)
	}
	// Recorded even when the value turns out unusable: the child must never
	// see a variable the user meant as a secret.
	b.mu.Lock()
	b.consumed[name] = true
	b.mu.Unlock()
	if v == "" {
		return Secret{}, fmt.Errorf("environment variable %s is empty", name)
	}
	v, err := applyField(v, field)
	if err != nil {
		return Secret{}, fmt.Errorf("environment variable %s: %w", name, err)
	}
	return Secret{Value: v}, nil
}

func (b *envBackend) ConsumedEnv() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.consumed))
	for n := range b.consumed {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (b *envBackend) Close(context.Context) error { return nil }
