package backends

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	infisical "github.com/infisical/go-sdk"
	"github.com/infisical/go-sdk/packages/models"
)

const (
	defaultInfisicalSite = "https://app.infisical.com"
	// defaultInfisicalTimeout bounds one Infisical request. The SDK takes no
	// context per request and its HTTP client has no overall timeout, so
	// without this a server that accepts and never answers would hold
	// agentvault before the command starts.
	defaultInfisicalTimeout = 30 * time.Second
	// infisicalCloseTimeout bounds Close as a whole, whatever the caller's
	// context: a session must exit even when Infisical has gone away.
	infisicalCloseTimeout = 10 * time.Second
	// infisicalMaxMargin is how long before its expiry an access token is
	// replaced by a new login; short-lived tokens are replaced after four
	// fifths of their life instead.
	infisicalMaxMargin = 30 * time.Second
)

// infisicalConfig is the YAML of an infisical backend.
type infisicalConfig struct {
	SiteURL     string              `yaml:"site_url"` // default https://app.infisical.com
	ProjectID   string              `yaml:"project_id"`
	Environment string              `yaml:"environment"`
	CACert      string              `yaml:"ca_cert"` // PEM file added to the system roots
	Timeout     time.Duration       `yaml:"timeout"` // per request, default 30s
	Auth        infisicalAuthConfig `yaml:"auth"`
}

// infisicalBackend resolves infisical:[/path/]NAME[#field] through the
// Infisical SDK. It logs in on the first Resolve (so a config that never uses
// it costs no login), reads the secret again on every Resolve (so rotation is
// seen), logs in again before its access token runs out, and revokes the
// tokens it obtained at Close.
//
// Every login gets its own SDK client, which is never changed afterwards:
// the SDK's clients are not safe for a login running beside requests, and
// this way concurrent Resolves share a client that only reads.
type infisicalBackend struct {
	typ       string
	name      string
	site      string
	projectID string
	env       string
	caPEM     string
	timeout   time.Duration
	auth      *infisicalAuth
	consumed  []string

	// ctx is what the SDK clients are built with; Close cancels it. With
	// AutoTokenRefresh off the SDK starts no goroutine on it, but a client
	// must never outlive the backend should that change.
	ctx    context.Context
	cancel context.CancelFunc

	loginMu sync.Mutex // serialises logins

	mu      sync.Mutex
	closed  bool
	current *infisicalLogin
	ours    []*infisicalLogin // logins agentvault made, revoked at Close

	closeOnce sync.Once
	closeErr  error
}

// infisicalLogin is one access token and the SDK client that carries it.
type infisicalLogin struct {
	client  infisical.InfisicalClientInterface
	token   string
	expires time.Time // zero: no expiry known (a user-supplied token)
	margin  time.Duration
}

func (l *infisicalLogin) usable(now time.Time) bool {
	return l.expires.IsZero() || now.Add(l.margin).Before(l.expires)
}

func (l *infisicalLogin) expired(now time.Time) bool {
	return !l.expires.IsZero() && !now.Before(l.expires)
}

// String keeps a login's token out of formatted output by value.
func (l *infisicalLogin) String() string { return "infisical access token" }

func openInfisical(o Options) (Backend, error) {
	var c infisicalConfig
	if err := o.Decode(&c); err != nil {
		return nil, err
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("backend %q: %s", o.Name, fmt.Sprintf(format, a...))
	}
	if c.SiteURL == "" {
		c.SiteURL = defaultInfisicalSite
	}
	u, err := url.Parse(c.SiteURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fail("site_url must be an http:// or https:// URL such as %s", defaultInfisicalSite)
	}
	if strings.TrimSpace(c.ProjectID) == "" {
		return nil, fail("project_id is required (the project's ID from its settings page)")
	}
	if strings.TrimSpace(c.Environment) == "" {
		return nil, fail("environment is required (an environment slug such as dev or prod)")
	}
	if c.Timeout < 0 {
		return nil, fail("timeout must not be negative")
	}
	if c.Timeout == 0 {
		c.Timeout = defaultInfisicalTimeout
	}
	b := &infisicalBackend{
		typ:       o.Type,
		name:      o.Name,
		site:      strings.TrimRight(c.SiteURL, "/"),
		projectID: c.ProjectID,
		env:       c.Environment,
		timeout:   c.Timeout,
	}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fail("ca_cert: %v", pathErr(err))
		}
		// The SDK only warns (and SilentMode hides it) when the PEM holds no
		// certificate; check here so a wrong file is a configuration error.
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fail("ca_cert %s holds no PEM certificate", c.CACert)
		}
		b.caPEM = string(pem)
	}
	consumed := map[string]bool{}
	auth, err := newInfisicalAuth(c.Auth, o.LookupEnv, func(n string) { consumed[n] = true })
	if err != nil {
		return nil, fail("%v", err)
	}
	b.auth = auth
	for n := range consumed {
		b.consumed = append(b.consumed, n)
	}
	sort.Strings(b.consumed)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

func (b *infisicalBackend) Type() string { return b.typ }

func (b *infisicalBackend) ConsumedEnv() []string { return append([]string(nil), b.consumed...) }

// newClient builds an SDK client for this backend's server. Retries are left
// to infisicalCall: the SDK's own retry loop ignores any deadline and has
// resty log each failed attempt, URL included, on stderr.
func (b *infisicalBackend) newClient() infisical.InfisicalClientInterface {
	return infisical.NewInfisicalClient(b.ctx, infisical.Config{
		SiteUrl:          b.site,
		CaCertificate:    b.caPEM,
		AutoTokenRefresh: infisical.BoolPtr(false),
		SilentMode:       true,
		LogWriter:        io.Discard,
		RetryRequestsConfig: &infisical.RetryRequestsConfig{
			ExponentialBackoff: &infisical.ExponentialBackoffStrategy{MaxRetries: 0},
		},
	})
}

// infisicalRef is a parsed reference: the folder, the secret's key and an
// optional JSON field.
type infisicalRef struct {
	path, name, field string
}

// String is the secret as Infisical's UI shows it: /folder/NAME.
func (r infisicalRef) String() string {
	if r.path == "/" {
		return "/" + r.name
	}
	return r.path + "/" + r.name
}

// parseInfisicalRef splits [/path/]NAME[#field]. The folder is everything
// before the last '/', "/" when there is none; a missing leading slash is
// added, since Infisical's paths are always absolute.
func parseInfisicalRef(ref string) (infisicalRef, error) {
	base, field := SplitField(ref)
	r := infisicalRef{path: "/", field: field}
	if strings.ContainsRune(base, '?') {
		return r, fmt.Errorf("infisical reference %q: query parameters are not supported", base)
	}
	if strings.ContainsFunc(base, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		return r, fmt.Errorf("infisical reference %q contains a space or control character", base)
	}
	dir, name := "", base
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		dir, name = base[:i], base[i+1:]
	}
	if name == "" {
		return r, fmt.Errorf("infisical reference %q names no secret: it must end in the secret's name", base)
	}
	r.name = name
	if dir = strings.TrimPrefix(dir, "/"); dir != "" {
		for _, seg := range strings.Split(dir, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return r, fmt.Errorf("infisical reference %q: the folder path has an empty, '.' or '..' segment", base)
			}
		}
		r.path = "/" + dir
	}
	return r, nil
}

var errInfisicalClosed = errors.New("the infisical backend is closed")

func (b *infisicalBackend) Resolve(ctx context.Context, ref string) (Secret, error) {
	r, err := parseInfisicalRef(ref)
	if err != nil {
		return Secret{}, err
	}
	if err := ctx.Err(); err != nil {
		return Secret{}, err
	}
	what := fmt.Sprintf("infisical secret %s (environment %s)", r, b.env)
	l, err := b.session(ctx, nil)
	if err != nil {
		return Secret{}, fmt.Errorf("%s: %w", what, err)
	}
	s, err := b.fetch(ctx, l, r)
	if infisicalStatus(err) == 401 {
		// The token may have been revoked, or may have ended before the
		// expiry agentvault keeps for it: get another one, then try once more.
		nl, lerr := b.session(ctx, l)
		if lerr != nil {
			return Secret{}, fmt.Errorf("%s: %w", what, lerr)
		}
		if nl.token != l.token {
			s, err = b.fetch(ctx, nl, r)
		}
	}
	if err != nil {
		return Secret{}, b.describe(what, err)
	}
	if s.SecretValue == "" {
		return Secret{}, fmt.Errorf("%s is empty", what)
	}
	v, err := applyField(s.SecretValue, r.field)
	if err != nil {
		return Secret{}, fmt.Errorf("%s: %w", what, err)
	}
	return Secret{Value: v}, nil
}

// fetch reads one secret. References are expanded and imports included, as
// `infisical run` and Infisical's other integrations do, so a secret that
// is ${another} or comes from an imported folder resolves as the user sees
// it in Infisical.
func (b *infisicalBackend) fetch(ctx context.Context, l *infisicalLogin, r infisicalRef) (models.Secret, error) {
	return infisicalCall(ctx, b.timeout, func() (models.Secret, error) {
		return l.client.Secrets().Retrieve(infisical.RetrieveSecretOptions{
			// The SDK puts the key into the URL path as is.
			SecretKey:              url.PathEscape(r.name),
			ProjectID:              b.projectID,
			Environment:            b.env,
			SecretPath:             r.path,
			Type:                   "shared",
			ExpandSecretReferences: true,
			IncludeImports:         true,
		})
	}, nil)
}

// session returns a login whose token is usable for a while yet, logging in
// when there is none. stale is a login that Infisical just refused: it is
// replaced even if its expiry says it is still good.
func (b *infisicalBackend) session(ctx context.Context, stale *infisicalLogin) (*infisicalLogin, error) {
	b.loginMu.Lock()
	defer b.loginMu.Unlock()
	b.mu.Lock()
	closed, cur := b.closed, b.current
	b.mu.Unlock()
	if closed {
		return nil, errInfisicalClosed
	}
	if cur != nil && cur != stale && cur.usable(time.Now()) {
		return cur, nil
	}
	l, ours, err := b.login(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if ours {
		// An earlier token of ours stays listed: Close revokes every one
		// that has not expired.
		b.ours = append(b.ours, l)
	}
	if b.closed {
		return nil, errInfisicalClosed // Close revokes it or will
	}
	b.current = l
	return l, nil
}

// Close revokes every access token agentvault obtained by logging in (never
// one the user supplied) and releases the SDK. It runs once; later calls
// return the first result. It revokes even when ctx is already cancelled (a
// session ending on SIGINT must still give its tokens back) but never for
// longer than ctx's deadline or infisicalCloseTimeout.
func (b *infisicalBackend) Close(ctx context.Context) error {
	b.closeOnce.Do(func() { b.closeErr = b.shutdown(ctx) })
	return b.closeErr
}

func (b *infisicalBackend) shutdown(ctx context.Context) error {
	limit := infisicalCloseTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < limit {
		limit = max(time.Until(dl), 0)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	defer b.cancel()

	b.mu.Lock()
	b.closed = true
	b.current = nil
	b.mu.Unlock()
	// A login in progress finishes (within its timeout) before the list is
	// taken, so its token is revoked too.
	b.loginMu.Lock()
	b.mu.Lock()
	logins := b.ours
	b.ours = nil
	b.mu.Unlock()
	b.loginMu.Unlock()

	errs := make([]error, len(logins))
	var wg sync.WaitGroup
	now := time.Now()
	for i, l := range logins {
		if l.expired(now) {
			continue // Infisical no longer honours it
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.revoke(rctx, l.token)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// revoke revokes one access token through a client of its own, so that no
// request still running on the login's client shares its state.
func (b *infisicalBackend) revoke(ctx context.Context, token string) error {
	c := b.newClient()
	c.Auth().SetAccessToken(token)
	_, err := infisicalCall(ctx, b.timeout, func() (struct{}, error) {
		return struct{}{}, c.Auth().RevokeAccessToken()
	}, nil)
	if infisicalStatus(err) == 401 {
		return nil // already invalid: gone either way
	}
	if err != nil {
		return b.describe("infisical: revoking the access token", err, token)
	}
	return nil
}

// adoptLate takes a token from a login that answered after agentvault had
// stopped waiting for it: Close revokes it, or it is revoked now when the
// backend is already closed.
func (b *infisicalBackend) adoptLate(cred infisical.MachineIdentityCredential) {
	if cred.AccessToken == "" {
		return
	}
	b.mu.Lock()
	if !b.closed {
		b.ours = append(b.ours, &infisicalLogin{token: cred.AccessToken, expires: infisicalExpiry(time.Now(), cred.ExpiresIn)})
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), infisicalCloseTimeout)
	defer cancel()
	_ = b.revoke(ctx, cred.AccessToken)
}

func infisicalExpiry(start time.Time, expiresIn int64) time.Time {
	if expiresIn <= 0 {
		return time.Time{}
	}
	return start.Add(time.Duration(expiresIn) * time.Second)
}
