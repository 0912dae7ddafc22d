package session

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentvault/agentvault/backends"
	"github.com/agentvault/agentvault/config"
)

// fakeBackend serves values from a map and records what happened to it.
type fakeBackend struct {
	typ      string
	values   map[string]backends.Secret
	errs     map[string]error
	consumed []string

	mu       sync.Mutex
	resolved []string
	closed   int
	closeErr error
}

func (f *fakeBackend) Type() string { return f.typ }

func (f *fakeBackend) Resolve(_ context.Context, ref string) (backends.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolved = append(f.resolved, ref)
	if err := f.errs[ref]; err != nil {
		return backends.Secret{}, err
	}
	s, ok := f.values[ref]
	if !ok {
		return backends.Secret{}, errors.New("not found")
	}
	return s, nil
}

func (f *fakeBackend) ConsumedEnv() []string { return f.consumed }

func (f *fakeBackend) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return f.closeErr
}

// fakeOpener hands out prepared backends by instance name and records the
// options each was opened with.
type fakeOpener struct {
	backends map[string]*fakeBackend
	openErr  map[string]error
	opened   []backends.Options
}

func (o *fakeOpener) open(opts backends.Options) (backends.Backend, error) {
	o.opened = append(o.opened, opts)
	if err := o.openErr[opts.Name]; err != nil {
		return nil, err
	}
	b, ok := o.backends[opts.Name]
	if !ok {
		return nil, errors.New("no such fake")
	}
	return b, nil
}

const resolveConfig = `version: 1
backends:
  op:
    type: exec
    command: [op, read]
  vault: {}
  unused:
    type: file
credentials:
  - name: github
    secret: vault:secret/agents/github#token
    preset: github
  - name: anthropic
    secret: env:ANTHROPIC_API_KEY
    preset: anthropic
  - name: stripe
    secret: op:op://vault/stripe/key
    hosts: [api.stripe.com]
    inject: bearer
  - name: db
    secret: vault:database/creds/agent
    hosts: [db.example.com]
    ttl: 5m
`

func newResolveFixture(t *testing.T) (*config.Config, *fakeOpener) {
	t.Helper()
	cfg, err := config.Parse("r.yaml", []byte(resolveConfig))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, &fakeOpener{backends: map[string]*fakeBackend{
		"vault": {typ: "vault", consumed: []string{"VAULT_TOKEN", "VAULT_ADDR"}, values: map[string]backends.Secret{
			"secret/agents/github#token": {Value: "ghp_realgithubvalue"},
			"database/creds/agent":       {Value: "dbpass", LeaseID: "database/creds/agent/xyz", TTL: 30 * time.Second, Renewable: true},
		}},
		"env": {typ: "env", consumed: []string{"ANTHROPIC_API_KEY"}, values: map[string]backends.Secret{
			"ANTHROPIC_API_KEY": {Value: "sk-ant-real"},
		}},
		"op": {typ: "exec", values: map[string]backends.Secret{"op://vault/stripe/key": {Value: "sk_live_real"}}},
	}}
}

func TestResolve(t *testing.T) {
	cfg, fo := newResolveFixture(t)
	lookup := envMap(map[string]string{"X": "y"})
	r, err := Resolve(context.Background(), cfg, fo.open, lookup)
	if err != nil {
		t.Fatal(err)
	}
	// Each needed instance opened once, the unused one never.
	var names []string
	for _, o := range fo.opened {
		names = append(names, o.Name+"/"+o.Type)
		if o.Decode == nil || o.LookupEnv == nil {
			t.Errorf("options for %s lack Decode or LookupEnv", o.Name)
		}
		if v, _ := o.LookupEnv("X"); v != "y" {
			t.Errorf("LookupEnv not passed through")
		}
	}
	if want := []string{"vault/vault", "env/env", "op/exec"}; !reflect.DeepEqual(names, want) {
		t.Errorf("opened %v, want %v", names, want)
	}
	// The declared exec backend decodes its options; the undeclared env one nothing.
	for _, o := range fo.opened {
		var opts struct {
			Command []string `yaml:"command"`
		}
		if err := o.Decode(&opts); err != nil {
			t.Errorf("%s Decode: %v", o.Name, err)
		}
		if o.Name == "op" && !reflect.DeepEqual(opts.Command, []string{"op", "read"}) {
			t.Errorf("op command = %v", opts.Command)
		}
		if o.Name == "env" && opts.Command != nil {
			t.Errorf("env decoded %v", opts.Command)
		}
	}

	want := map[string]struct{ value, backend, prefix string }{
		"github":    {"ghp_realgithubvalue", "vault", "ghp_agentvault"},
		"anthropic": {"sk-ant-real", "env", "sk-ant-agentvault"},
		"stripe":    {"sk_live_real", "exec", "sk_live_agentvault"},
		"db":        {"dbpass", "vault", "agentvault"},
	}
	if len(r.Credentials) != len(want) {
		t.Fatalf("%d credentials", len(r.Credentials))
	}
	seen := map[string]bool{}
	for _, rc := range r.Credentials {
		w := want[rc.Name]
		if rc.Secret.Value != w.value || rc.Backend != w.backend || !strings.HasPrefix(rc.Placeholder, w.prefix) {
			t.Errorf("%s: backend=%s placeholder=%s", rc.Name, rc.Backend, rc.Placeholder)
		}
		if seen[rc.Placeholder] {
			t.Errorf("placeholder reused")
		}
		seen[rc.Placeholder] = true
	}
	if db := r.Credentials[3]; db.Secret.LeaseID == "" || db.EffectiveTTL(db.Secret.TTL) != 5*time.Minute {
		t.Errorf("db = %+v", db)
	}
	if got := r.Consumed(); !reflect.DeepEqual(got, []string{"ANTHROPIC_API_KEY", "VAULT_ADDR", "VAULT_TOKEN"}) {
		t.Errorf("Consumed = %v", got)
	}

	// Re-resolution goes through the same instance and sees a rotated value.
	fo.backends["vault"].values["secret/agents/github#token"] = backends.Secret{Value: "ghp_rotated"}
	s, err := r.Reresolve(context.Background(), "github")
	if err != nil || s.Value != "ghp_rotated" {
		t.Errorf("Reresolve = %q, %v", s.Value, err)
	}
	if len(fo.opened) != 3 {
		t.Errorf("Reresolve opened a backend again")
	}
	fo.backends["vault"].errs = map[string]error{"secret/agents/github#token": errors.New("permission denied")}
	_, err = r.Reresolve(context.Background(), "github")
	if err == nil || err.Error() != `credential "github": backend vault (secret/agents/github#token): permission denied` {
		t.Errorf("Reresolve error = %v", err)
	}
	if _, err := r.Reresolve(context.Background(), "nope"); err == nil {
		t.Error("Reresolve of an unknown credential succeeded")
	}

	fo.backends["vault"].closeErr = errors.New("revoke failed")
	err = r.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "backend vault: revoke failed") {
		t.Errorf("Close = %v", err)
	}
	for name, b := range fo.backends {
		if b.closed != 1 {
			t.Errorf("%s closed %d times", name, b.closed)
		}
	}
	if _, err := r.Reresolve(context.Background(), "github"); err == nil || !strings.Contains(err.Error(), "backend is closed") {
		t.Errorf("Reresolve after Close = %v", err)
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(*fakeOpener)
		want    string
		closed  []string // backends that must have been closed
	}{
		{"resolve fails", func(o *fakeOpener) {
			o.backends["env"].errs = map[string]error{"ANTHROPIC_API_KEY": errors.New("variable ANTHROPIC_API_KEY is not set")}
		}, `credential "anthropic": backend env (ANTHROPIC_API_KEY): variable ANTHROPIC_API_KEY is not set`, []string{"vault", "env"}},
		{"open fails", func(o *fakeOpener) {
			o.openErr = map[string]error{"vault": errors.New("no token: set VAULT_TOKEN")}
		}, `credential "github": backend vault (secret/agents/github#token): no token: set VAULT_TOKEN`, nil},
		{"empty value", func(o *fakeOpener) {
			o.backends["op"].values["op://vault/stripe/key"] = backends.Secret{}
		}, `credential "stripe": backend op (op://vault/stripe/key): the secret is empty`, []string{"vault", "env", "op"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, fo := newResolveFixture(t)
			tt.prepare(fo)
			r, err := Resolve(context.Background(), cfg, fo.open, envMap(nil))
			if r != nil {
				t.Error("Resolved returned with an error")
			}
			var re *ResolveError
			if !errors.As(err, &re) || err.Error() != tt.want || errors.Unwrap(err) != re.Err {
				t.Fatalf("error = %v, want %s", err, tt.want)
			}
			for _, v := range []string{"ghp_realgithubvalue", "sk-ant-real", "sk_live_real", "dbpass"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error holds a value: %v", err)
				}
			}
			for _, n := range tt.closed {
				if fo.backends[n].closed != 1 {
					t.Errorf("backend %s not closed after the failure", n)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	cfg, fo := newResolveFixture(t)
	fo.openErr = map[string]error{"op": errors.New(`exec: "op": executable file not found in $PATH`)}
	fo.backends["env"].errs = map[string]error{"ANTHROPIC_API_KEY": errors.New("variable ANTHROPIC_API_KEY is not set")}
	// A second credential on the failed op backend must not open it again.
	cfg.Credentials = append(cfg.Credentials, config.Credential{Name: "other", Secret: config.Ref{Backend: "op", Ref: "op://x"}, Hosts: []string{"x.example.com"}})

	res, err := Check(context.Background(), cfg, fo.open, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name, backend, typ string
		ok                 bool
		ttl                time.Duration
		leased             bool
	}
	var got []row
	for _, r := range res {
		got = append(got, row{r.Name, r.Backend, r.BackendType, r.OK(), r.TTL, r.Leased})
		if r.Err != nil && !strings.HasPrefix(r.Err.Error(), fmt.Sprintf("credential %q: backend ", r.Name)+r.Backend+" (") {
			t.Errorf("%s error = %v", r.Name, r.Err)
		}
	}
	want := []row{
		{"github", "vault", "vault", true, time.Hour, false},
		{"anthropic", "env", "env", false, time.Hour, false},
		{"stripe", "op", "exec", false, time.Hour, false},
		{"db", "vault", "vault", true, 5 * time.Minute, true},
		{"other", "op", "exec", false, time.Hour, false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Check rows\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(res[0].Hosts, []string{"api.github.com", "github.com", "*.githubusercontent.com", "uploads.github.com", "*.githubcopilot.com"}) {
		t.Errorf("hosts = %v", res[0].Hosts)
	}
	opens := 0
	for _, o := range fo.opened {
		if o.Name == "op" {
			opens++
		}
	}
	if opens != 1 {
		t.Errorf("failed backend opened %d times", opens)
	}
	if fo.backends["vault"].closed != 1 || fo.backends["env"].closed != 1 {
		t.Error("Check left backends open (leases unrevoked)")
	}
}

func TestEffectiveTTL(t *testing.T) {
	tests := []struct {
		cfg, backend, want time.Duration
	}{
		{0, 0, time.Hour},
		{0, 30 * time.Second, 30 * time.Second},
		{10 * time.Minute, 30 * time.Second, 10 * time.Minute},
	}
	for _, tt := range tests {
		if got := (config.Credential{TTL: tt.cfg}).EffectiveTTL(tt.backend); got != tt.want {
			t.Errorf("EffectiveTTL(%v, %v) = %v", tt.cfg, tt.backend, got)
		}
	}
}

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}
