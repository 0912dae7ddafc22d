package backends

import (
	"context"
	"fmt"
	"strings"
)

// envBackend reads agentvault's own environment: env:NAME[#field].
type envBackend struct {
	typ    string
	lookup func(string) (string, bool)
	consumedEnv
}

func openEnv(o Options) (Backend, error) {
	if err := noOptions(o); err != nil {
		return nil, err
	}
	return &envBackend{typ: o.Type, lookup: o.LookupEnv}, nil
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
	b.add(name)
	if v == "" {
		return Secret{}, fmt.Errorf("environment variable %s is empty", name)
	}
	v, err := applyField(v, field)
	if err != nil {
		return Secret{}, fmt.Errorf("environment variable %s: %w", name, err)
	}
	return Secret{Value: v}, nil
}

func (b *envBackend) Close(context.Context) error { return nil }
