package backends

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
)

const (
	// defaultVaultTimeout bounds one Vault request (the api client retries
	// connection errors and 5xx twice within it).
	defaultVaultTimeout = 30 * time.Second
	// vaultCloseTimeout bounds Close as a whole, whatever the caller's
	// context: a session must exit even when Vault has gone away.
	vaultCloseTimeout = 15 * time.Second
)

// vaultConfig is the YAML of a vault backend.
type vaultConfig struct {
	Address   string          `yaml:"address"`   // default $VAULT_ADDR
	Namespace string          `yaml:"namespace"` // default $VAULT_NAMESPACE
	CACert    string          `yaml:"ca_cert"`   // default $VAULT_CACERT
	Timeout   time.Duration   `yaml:"timeout"`   // per request, default 30s
	Auth      vaultAuthConfig `yaml:"auth"`
}

// vaultBackend resolves vault:PATH[?version=N][#field] through the Vault HTTP
// API. KV secrets are read again on every Resolve (so rotation is seen);
// leased secrets are fetched once per path and shared until their lease runs
// out, renewed in the background and revoked at Close.
type vaultBackend struct {
	typ       string
	name      string
	addr      string
	namespace string
	client    *vault.Client
	auth      *vaultAuth
	mounts    mountCache
	ctx       context.Context // cancelled by Close: stops the renewal loops
	cancel    context.CancelFunc
	renewWG   sync.WaitGroup

	// authMu serialises logins; haveToken and login are guarded by it.
	authMu    sync.Mutex
	haveToken bool   // method token: the user's token is set on client
	login     *lease // method other than token: the current login token

	mu     sync.Mutex
	closed bool
	consumedEnv
	dynamic map[string]*dynEntry // leased responses by read path + query
	leases  []*lease             // every lease taken, for revocation
	tokens  []*lease             // login tokens agentvault created, for revocation

	closeOnce sync.Once
	closeErr  error
}

func openVault(o Options) (Backend, error) {
	var c vaultConfig
	if err := o.Decode(&c); err != nil {
		return nil, err
	}
	env := func(name string) string {
		v, _ := o.LookupEnv(name)
		return v
	}
	if c.Address == "" {
		c.Address = env("VAULT_ADDR")
	}
	if c.Address == "" {
		return nil, fmt.Errorf("backend %q: no Vault address (set address: or VAULT_ADDR)", o.Name)
	}
	if c.Namespace == "" {
		c.Namespace = env("VAULT_NAMESPACE")
	}
	if c.CACert == "" {
		c.CACert = env("VAULT_CACERT")
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("backend %q: timeout must not be negative", o.Name)
	}
	if c.Timeout == 0 {
		c.Timeout = defaultVaultTimeout
	}

	b := &vaultBackend{
		typ:       o.Type,
		name:      o.Name,
		addr:      c.Address,
		namespace: c.Namespace,
		dynamic:   map[string]*dynEntry{},
	}
	auth, err := newVaultAuth(c.Auth, o.LookupEnv, b.consume)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", o.Name, err)
	}
	b.auth = auth
	client, err := newVaultClient(c)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", o.Name, err)
	}
	b.client = client
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// newVaultClient builds an api client from c alone. The api package also reads
// VAULT_TOKEN and VAULT_NAMESPACE from the process environment by itself;
// both are overridden here so that only what this backend decided is used.
func newVaultClient(c vaultConfig) (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client settings from the environment: %v", cfg.Error)
	}
	cfg.Address = c.Address
	cfg.Timeout = c.Timeout
	if c.CACert != "" {
		if err := cfg.ConfigureTLS(&vault.TLSConfig{CACert: c.CACert}); err != nil {
			return nil, fmt.Errorf("ca_cert %s: %v", c.CACert, err)
		}
	}
	client, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %v", c.Address, err)
	}
	client.ClearToken()
	client.ClearNamespace()
	if c.Namespace != "" {
		client.SetNamespace(c.Namespace)
	}
	return client, nil
}

func (b *vaultBackend) Type() string { return b.typ }

func (b *vaultBackend) consume(name string) { b.consumedEnv.add(name) }

var errVaultClosed = errors.New("the vault backend is closed")

func (b *vaultBackend) Resolve(ctx context.Context, ref string) (Secret, error) {
	if err := ctx.Err(); err != nil {
		return Secret{}, err
	}
	r, err := parseVaultRef(ref)
	if err != nil {
		return Secret{}, err
	}
	if b.isClosed() {
		return Secret{}, errVaultClosed
	}
	if err := b.ensureToken(ctx); err != nil {
		return Secret{}, err
	}
	m, err := b.mounts.lookup(ctx, b.client, r.path)
	if err != nil {
		return Secret{}, b.apiError("reading", r.path, err)
	}
	readPath, query, err := r.apiPath(m)
	if err != nil {
		return Secret{}, err
	}

	// Leased answers are shared: a second credential naming the same path
	// (another field of the same database login, say) must not take a
	// second lease.
	key := readPath + "?" + query.Encode()
	e, err := b.entry(key)
	if err != nil {
		return Secret{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if data, l := e.current(); l != nil {
		return pickSecret(r, data, l)
	}

	s, err := b.client.Logical().ReadWithDataWithContext(ctx, readPath, query)
	if err != nil {
		return Secret{}, b.apiError("reading", r.path, err)
	}
	data, err := secretData(r, m, s)
	if err != nil {
		return Secret{}, err
	}
	if s.LeaseID == "" {
		return pickSecret(r, data, nil)
	}
	l := newLease(s.LeaseID, time.Duration(s.LeaseDuration)*time.Second, s.Renewable)
	if err := b.track(l, false); err != nil {
		return Secret{}, err
	}
	e.set(data, l)
	return pickSecret(r, data, l)
}

// pickSecret turns a response's data into the Secret the reference names.
func pickSecret(r vaultRef, data map[string]any, l *lease) (Secret, error) {
	v, err := selectValue(r, data, l != nil)
	if err != nil {
		return Secret{}, err
	}
	s := Secret{Value: v}
	if l != nil {
		s.LeaseID = l.id
		s.TTL = l.remaining()
		s.Renewable = l.renewable
	}
	return s, nil
}

func (b *vaultBackend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func (b *vaultBackend) entry(key string) (*dynEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errVaultClosed
	}
	e, ok := b.dynamic[key]
	if !ok {
		e = &dynEntry{}
		b.dynamic[key] = e
	}
	return e, nil
}

// apiError words a Vault failure for one path: Vault's own reasons, or why
// Vault could not be reached. Vault's messages carry no secret values, and
// neither do request URLs (paths only), so both may be shown.
func (b *vaultBackend) apiError(op, path string, err error) error {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		reason := vaultOneLine(vaultReasons(re.Errors), 300)
		if reason == "" {
			reason = strings.ToLower(vaultStatusText(re.StatusCode))
		}
		return fmt.Errorf("vault %s %s: %s (HTTP %d)", op, path, reason, re.StatusCode)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("vault %s %s: %w", op, path, err)
	}
	return fmt.Errorf("vault %s %s: Vault at %s is unreachable: %v", op, path, b.addr, vaultUnwrapURLError(err))
}

// multiErrorHeader is go-multierror's "N errors occurred:" that Vault puts
// before a bulleted list inside one error string.
var multiErrorHeader = regexp.MustCompile(`^\d+ errors? occurred:`)

// vaultReasons flattens Vault's error strings into "a; b".
func vaultReasons(errs []string) string {
	var out []string
	for _, e := range errs {
		e = strings.TrimSpace(multiErrorHeader.ReplaceAllString(strings.TrimSpace(e), ""))
		for _, item := range strings.Split(e, "\n") {
			item = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(item), "* "))
			if item != "" {
				out = append(out, item)
			}
		}
	}
	return strings.Join(out, "; ")
}
