package backends

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	infisical "github.com/infisical/go-sdk"
	sdkerrors "github.com/infisical/go-sdk/packages/errors"
)

// infisicalAuthConfig is the auth: mapping of an infisical backend. A key the
// method does not use is refused so that a misplaced setting is not
// silently ignored.
type infisicalAuthConfig struct {
	Method           string `yaml:"method"` // universal-auth (default), access-token
	ClientID         string `yaml:"client_id"`
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	OrganizationSlug string `yaml:"organization_slug"`
	TokenFile        string `yaml:"token_file"`
}

const (
	infisicalClientIDEnv     = "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID"
	infisicalClientSecretEnv = "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET"
	infisicalTokenEnv        = "INFISICAL_TOKEN" // what the infisical CLI reads
	infisicalOrgSlugEnv      = "INFISICAL_AUTH_ORGANIZATION_SLUG"
)

// infisicalCredentialEnv give access to Infisical by themselves. The backend
// withholds every one that is set from the child, whatever its auth method:
// the agent must reach Infisical's secrets only through agentvault.
var infisicalCredentialEnv = []string{infisicalClientIDEnv, infisicalClientSecretEnv, infisicalTokenEnv}

// keys a method may use, besides method.
var infisicalAuthKeys = map[string][]string{
	"universal-auth": {"client_id", "client_secret", "client_secret_file", "organization_slug"},
	"access-token":   {"token_file"},
}

// infisicalAuth holds how to obtain a token. Environment values are read once
// at open (so ConsumedEnv is complete before any request); files are read at
// each login, so a rotated client secret or token is picked up.
type infisicalAuth struct {
	cfg infisicalAuthConfig
	env map[string]string
}

func newInfisicalAuth(c infisicalAuthConfig, lookup func(string) (string, bool), consume func(string)) (*infisicalAuth, error) {
	if c.Method == "" {
		c.Method = "universal-auth"
	}
	allowed, ok := infisicalAuthKeys[c.Method]
	if !ok {
		return nil, fmt.Errorf("auth.method %q is not supported (known: universal-auth, access-token)", c.Method)
	}
	set := map[string]bool{
		"client_id":          c.ClientID != "",
		"client_secret":      c.ClientSecret != "",
		"client_secret_file": c.ClientSecretFile != "",
		"organization_slug":  c.OrganizationSlug != "",
		"token_file":         c.TokenFile != "",
	}
	for _, key := range []string{"client_id", "client_secret", "client_secret_file", "organization_slug", "token_file"} {
		if set[key] && !slices.Contains(allowed, key) {
			return nil, fmt.Errorf("auth.%s does not apply to auth method %s", key, c.Method)
		}
	}
	a := &infisicalAuth{cfg: c, env: map[string]string{}}
	read := func(name string) {
		if v, ok := lookup(name); ok {
			consume(name)
			a.env[name] = v
		}
	}
	for _, name := range infisicalCredentialEnv {
		read(name)
	}
	switch c.Method {
	case "universal-auth":
		if c.OrganizationSlug == "" {
			read(infisicalOrgSlugEnv)
		}
		if c.ClientSecret != "" && c.ClientSecretFile != "" {
			return nil, errors.New("auth: set client_secret or client_secret_file, not both")
		}
		if a.clientID() == "" {
			return nil, fmt.Errorf("auth method universal-auth needs client_id or $%s", infisicalClientIDEnv)
		}
		if c.ClientSecret == "" && c.ClientSecretFile == "" && a.env[infisicalClientSecretEnv] == "" {
			return nil, fmt.Errorf("auth method universal-auth needs client_secret, client_secret_file or $%s", infisicalClientSecretEnv)
		}
	case "access-token":
		if c.TokenFile == "" && a.env[infisicalTokenEnv] == "" {
			return nil, fmt.Errorf("auth method access-token needs token_file or $%s", infisicalTokenEnv)
		}
	}
	return a, nil
}

func (a *infisicalAuth) clientID() string {
	if a.cfg.ClientID != "" {
		return a.cfg.ClientID
	}
	return strings.TrimSpace(a.env[infisicalClientIDEnv])
}

// clientSecret is never empty on success: the SDK would quietly fall back to
// the process environment for an empty one.
func (a *infisicalAuth) clientSecret() (string, error) {
	switch {
	case a.cfg.ClientSecretFile != "":
		return readVaultCredentialFile("auth.client_secret_file", a.cfg.ClientSecretFile)
	case a.cfg.ClientSecret != "":
		return a.cfg.ClientSecret, nil
	}
	if v := strings.TrimSpace(a.env[infisicalClientSecretEnv]); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("$%s is empty", infisicalClientSecretEnv)
}

func (a *infisicalAuth) orgSlug() string {
	if a.cfg.OrganizationSlug != "" {
		return a.cfg.OrganizationSlug
	}
	return a.env[infisicalOrgSlugEnv]
}

func (a *infisicalAuth) accessToken() (string, error) {
	if a.cfg.TokenFile != "" {
		return readVaultCredentialFile("auth.token_file", a.cfg.TokenFile)
	}
	if v := strings.TrimSpace(a.env[infisicalTokenEnv]); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("$%s is empty", infisicalTokenEnv)
}

// login obtains a token on a new SDK client. ours reports whether agentvault
// created the token (and so must revoke it).
func (b *infisicalBackend) login(ctx context.Context) (l *infisicalLogin, ours bool, err error) {
	client := b.newClient()
	if b.auth.cfg.Method == "access-token" {
		tok, err := b.auth.accessToken()
		if err != nil {
			return nil, false, err
		}
		client.Auth().SetAccessToken(tok)
		return &infisicalLogin{client: client, token: tok}, false, nil
	}
	id := b.auth.clientID()
	secret, err := b.auth.clientSecret()
	if err != nil {
		return nil, false, err
	}
	slug := b.auth.orgSlug()
	start := time.Now()
	cred, err := infisicalCall(ctx, b.timeout, func() (infisical.MachineIdentityCredential, error) {
		a := client.Auth()
		if slug != "" {
			a = a.WithOrganizationSlug(slug)
		}
		return a.UniversalAuthLogin(id, secret)
	}, b.adoptLate)
	what := fmt.Sprintf("universal-auth login (client id %s) at %s", id, b.site)
	if err != nil {
		return nil, false, b.describe(what, err, secret)
	}
	if cred.AccessToken == "" {
		return nil, false, fmt.Errorf("%s: Infisical returned no access token", what)
	}
	l = &infisicalLogin{client: client, token: cred.AccessToken, expires: infisicalExpiry(start, cred.ExpiresIn)}
	if cred.ExpiresIn > 0 {
		l.margin = min(infisicalMaxMargin, time.Duration(cred.ExpiresIn)*time.Second/5)
	}
	return l, true, nil
}

// infisicalRetryDelays are the waits before the second and third attempt of
// a request that failed in transport (refused, reset, DNS).
var infisicalRetryDelays = []time.Duration{250 * time.Millisecond, time.Second}

// errInfisicalNoAnswer is a request that outlived its timeout.
type errInfisicalNoAnswer struct{ timeout time.Duration }

func (e errInfisicalNoAnswer) Error() string {
	return fmt.Sprintf("no answer within %s", e.timeout)
}

// infisicalCall runs an SDK call, retrying transport failures, and gives up
// when ctx ends or one attempt outlives timeout. The SDK's requests take no
// context, so an attempt given up on keeps running in its goroutine; if it
// then succeeds, late gets its result (a login's token must not be lost).
func infisicalCall[T any](ctx context.Context, timeout time.Duration, f func() (T, error), late func(T)) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		v, err := infisicalAttempt(ctx, timeout, f, late)
		if err == nil || attempt >= len(infisicalRetryDelays) || !infisicalRetryable(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return zero, err
		case <-time.After(infisicalRetryDelays[attempt]):
		}
	}
}

func infisicalAttempt[T any](ctx context.Context, timeout time.Duration, f func() (T, error), late func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var zero T
	var err error
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errInfisicalNoAnswer{timeout}
	}
	if late != nil {
		go func() {
			if r := <-ch; r.err == nil {
				late(r.v)
			}
		}()
	}
	return zero, err
}

// infisicalStatus is the HTTP status of an Infisical API error, else 0.
func infisicalStatus(err error) int {
	var api *sdkerrors.APIError
	if errors.As(err, &api) {
		return api.StatusCode
	}
	return 0
}

// infisicalTransportDetail digs the cause out of the SDK's RequestError, which
// keeps it unexported and only prints it as "... [err=CAUSE]". ok is true
// when the cause is net/http's `Get "URL": reason` (the request did not
// complete); reason then has the URL prefix removed. Other causes (a JSON
// answer that does not decode) are not returned: encoding/json's messages
// can quote characters of a body that holds a secret.
func infisicalTransportDetail(err error) (reason string, ok bool) {
	var re *sdkerrors.RequestError
	if !errors.As(err, &re) {
		return "", false
	}
	msg := re.Error()
	i := strings.Index(msg, "[err=")
	if i < 0 {
		return "", false
	}
	inner := strings.TrimSuffix(msg[i+len("[err="):], "]")
	for _, m := range []string{"Get ", "Post "} {
		if strings.HasPrefix(inner, m+`"`) {
			if j := strings.Index(inner, `": `); j > 0 {
				return inner[j+3:], true
			}
			return inner, true
		}
	}
	return "", false
}

func infisicalRetryable(err error) bool {
	reason, ok := infisicalTransportDetail(err)
	return ok && !infisicalTLSFailure(reason)
}

func infisicalTLSFailure(reason string) bool {
	return strings.Contains(reason, "x509:") || strings.Contains(reason, "tls:")
}

// describe words a failed Infisical call in one line: what was being done,
// Infisical's own reason and status, or why Infisical could not be reached.
// Infisical's messages name keys and folders, not values; known credentials
// are still masked in case an answer echoes the request (a 422 is shown
// whole).
func (b *infisicalBackend) describe(what string, err error, secrets ...string) error {
	var api *sdkerrors.APIError
	if errors.As(err, &api) {
		msg := vaultOneLine(b.mask(api.ErrorMessage, secrets), 300)
		var reason string
		switch api.StatusCode {
		case 401:
			reason = "Infisical rejected the credentials"
		case 403:
			reason = "access denied"
		case 404:
			reason = "not found"
		default:
			reason = strings.ToLower(vaultStatusText(api.StatusCode))
		}
		if msg != "" {
			reason += ": " + msg
		}
		return fmt.Errorf("%s: %s (HTTP %d)", what, reason, api.StatusCode)
	}
	var na errInfisicalNoAnswer
	if errors.As(err, &na) {
		return fmt.Errorf("%s: Infisical at %s gave %v", what, b.site, na)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if reason, ok := infisicalTransportDetail(err); ok {
		reason = vaultOneLine(b.mask(reason, secrets), 300)
		if infisicalTLSFailure(reason) {
			return fmt.Errorf("%s: TLS with %s failed: %s (set ca_cert?)", what, b.site, reason)
		}
		return fmt.Errorf("%s: cannot reach Infisical at %s: %s", what, b.site, reason)
	}
	var re *sdkerrors.RequestError
	if errors.As(err, &re) {
		return fmt.Errorf("%s: the answer of Infisical at %s could not be read", what, b.site)
	}
	return fmt.Errorf("%s: %s", what, vaultOneLine(b.mask(err.Error(), secrets), 300))
}

// mask hides the credentials this backend knows of in text from Infisical.
func (b *infisicalBackend) mask(text string, extra []string) string {
	known := append([]string{}, extra...)
	if s := b.auth.cfg.ClientSecret; s != "" {
		known = append(known, s)
	}
	for _, n := range []string{infisicalClientSecretEnv, infisicalTokenEnv} {
		if s := strings.TrimSpace(b.auth.env[n]); s != "" {
			known = append(known, s)
		}
	}
	b.mu.Lock()
	for _, l := range b.ours {
		known = append(known, l.token)
	}
	if b.current != nil {
		known = append(known, b.current.token)
	}
	b.mu.Unlock()
	for _, s := range known {
		if len(s) >= 4 {
			text = strings.ReplaceAll(text, s, "[redacted]")
		}
	}
	return text
}
