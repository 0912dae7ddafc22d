package backends

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// vaultAuthConfig is the auth: mapping of a vault backend. Which keys apply
// depends on the method; a key the method does not use is refused so that a
// misplaced setting is not silently ignored.
type vaultAuthConfig struct {
	Method       string `yaml:"method"` // token (default), approle, jwt, kubernetes, userpass
	Path         string `yaml:"path"`   // auth mount; defaults to the method's name
	TokenFile    string `yaml:"token_file"`
	RoleID       string `yaml:"role_id"`
	RoleIDFile   string `yaml:"role_id_file"`
	SecretID     string `yaml:"secret_id"`
	SecretIDFile string `yaml:"secret_id_file"`
	Role         string `yaml:"role"`
	JWTFile      string `yaml:"jwt_file"`
	JWTEnv       string `yaml:"jwt_env"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
}

// defaultK8sTokenFile is where Kubernetes mounts a pod's service account token.
const defaultK8sTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// vaultCredentialEnv are the variables that give Vault access by themselves.
// The backend withholds every one that is set from the child, whatever its
// auth method: the agent must reach Vault's secrets only through agentvault.
var vaultCredentialEnv = []string{"VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID"}

// vaultAuth holds how to obtain a token. Environment values are read once
// at open (so ConsumedEnv is complete before any request); files are read at
// each login, so a rotated secret_id or service account token is picked up.
type vaultAuth struct {
	cfg  vaultAuthConfig
	env  map[string]string // the values of the variables read at open
	home string
}

// keys a method may use, besides method and path.
var vaultAuthKeys = map[string][]string{
	"token":      {"token_file"},
	"approle":    {"role_id", "role_id_file", "secret_id", "secret_id_file"},
	"jwt":        {"role", "jwt_file", "jwt_env"},
	"kubernetes": {"role", "jwt_file"},
	"userpass":   {"username", "password_file", "password_env"},
}

func newVaultAuth(c vaultAuthConfig, lookup func(string) (string, bool), consume func(string)) (*vaultAuth, error) {
	if c.Method == "" {
		c.Method = "token"
	}
	allowed, ok := vaultAuthKeys[c.Method]
	if !ok {
		return nil, fmt.Errorf("auth.method %q is not supported (known: token, approle, jwt, kubernetes, userpass)", c.Method)
	}
	for key, set := range c.setKeys() {
		if set && !slices.Contains(allowed, key) {
			return nil, fmt.Errorf("auth.%s does not apply to auth method %s", key, c.Method)
		}
	}
	if c.Method == "token" && c.Path != "" {
		return nil, fmt.Errorf("auth.path does not apply to auth method token")
	}
	if c.Path == "" {
		c.Path = c.Method
	}
	c.Path = strings.Trim(c.Path, "/")

	a := &vaultAuth{cfg: c, env: map[string]string{}}
	read := func(name string) {
		if v, ok := lookup(name); ok {
			consume(name)
			a.env[name] = v
		}
	}
	for _, name := range vaultCredentialEnv {
		read(name)
	}
	if h, ok := lookup("HOME"); ok {
		a.home = h
	}

	switch c.Method {
	case "approle":
		if c.RoleID != "" && c.RoleIDFile != "" {
			return nil, fmt.Errorf("auth: set role_id or role_id_file, not both")
		}
		if c.SecretID != "" && c.SecretIDFile != "" {
			return nil, fmt.Errorf("auth: set secret_id or secret_id_file, not both")
		}
		if c.RoleID == "" && c.RoleIDFile == "" && a.env["VAULT_ROLE_ID"] == "" {
			return nil, fmt.Errorf("auth method approle needs role_id, role_id_file or $VAULT_ROLE_ID")
		}
	case "jwt":
		if (c.JWTFile == "") == (c.JWTEnv == "") {
			return nil, fmt.Errorf("auth method jwt needs exactly one of jwt_file and jwt_env")
		}
		if c.JWTEnv != "" {
			read(c.JWTEnv)
		}
	case "kubernetes":
		if c.Role == "" {
			return nil, fmt.Errorf("auth method kubernetes needs role")
		}
		if c.JWTFile == "" {
			a.cfg.JWTFile = defaultK8sTokenFile
		}
	case "userpass":
		if c.Username == "" {
			return nil, fmt.Errorf("auth method userpass needs username")
		}
		if (c.PasswordFile == "") == (c.PasswordEnv == "") {
			return nil, fmt.Errorf("auth method userpass needs exactly one of password_file and password_env")
		}
		if c.PasswordEnv != "" {
			read(c.PasswordEnv)
		}
	}
	return a, nil
}

func (c vaultAuthConfig) setKeys() map[string]bool {
	return map[string]bool{
		"token_file":     c.TokenFile != "",
		"role_id":        c.RoleID != "",
		"role_id_file":   c.RoleIDFile != "",
		"secret_id":      c.SecretID != "",
		"secret_id_file": c.SecretIDFile != "",
		"role":           c.Role != "",
		"jwt_file":       c.JWTFile != "",
		"jwt_env":        c.JWTEnv != "",
		"username":       c.Username != "",
		"password_file":  c.PasswordFile != "",
		"password_env":   c.PasswordEnv != "",
	}
}

// userToken is the token of method token: token_file, else $VAULT_TOKEN,
// else ~/.vault-token (where "vault login" stores it).
func (a *vaultAuth) userToken() (string, error) {
	if a.cfg.TokenFile != "" {
		return readVaultCredentialFile("auth.token_file", a.cfg.TokenFile)
	}
	if t := a.env["VAULT_TOKEN"]; t != "" {
		return t, nil
	}
	home := a.home
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if home != "" {
		p := filepath.Join(home, ".vault-token")
		if _, err := os.Stat(p); err == nil {
			return readVaultCredentialFile("token file", p)
		}
	}
	return "", fmt.Errorf("no Vault token: set VAULT_TOKEN, run vault login (~/.vault-token) or configure auth.method")
}

// loginRequest is the path and body of the method's login call.
func (a *vaultAuth) loginRequest() (string, map[string]any, error) {
	c := a.cfg
	path := "auth/" + c.Path + "/login"
	switch c.Method {
	case "approle":
		roleID := c.RoleID
		if c.RoleIDFile != "" {
			v, err := readVaultCredentialFile("auth.role_id_file", c.RoleIDFile)
			if err != nil {
				return "", nil, err
			}
			roleID = v
		}
		if roleID == "" {
			roleID = a.env["VAULT_ROLE_ID"]
		}
		secretID := c.SecretID
		if c.SecretIDFile != "" {
			v, err := readVaultCredentialFile("auth.secret_id_file", c.SecretIDFile)
			if err != nil {
				return "", nil, err
			}
			secretID = v
		}
		if secretID == "" {
			secretID = a.env["VAULT_SECRET_ID"]
		}
		body := map[string]any{"role_id": roleID}
		// A role may be bound by CIDR instead of a secret_id.
		if secretID != "" {
			body["secret_id"] = secretID
		}
		return path, body, nil
	case "jwt", "kubernetes":
		jwt, err := a.jwt()
		if err != nil {
			return "", nil, err
		}
		body := map[string]any{"jwt": jwt}
		if c.Role != "" {
			body["role"] = c.Role
		}
		return path, body, nil
	case "userpass":
		var pw string
		if c.PasswordFile != "" {
			v, err := readVaultCredentialFile("auth.password_file", c.PasswordFile)
			if err != nil {
				return "", nil, err
			}
			pw = v
		} else if pw = a.env[c.PasswordEnv]; pw == "" {
			return "", nil, fmt.Errorf("auth.password_env: $%s is not set or empty", c.PasswordEnv)
		}
		return path + "/" + url.PathEscape(c.Username), map[string]any{"password": pw}, nil
	}
	return "", nil, fmt.Errorf("auth method %s has no login", c.Method)
}

func (a *vaultAuth) jwt() (string, error) {
	if a.cfg.JWTEnv != "" {
		v := strings.TrimSpace(a.env[a.cfg.JWTEnv])
		if v == "" {
			return "", fmt.Errorf("auth.jwt_env: $%s is not set or empty", a.cfg.JWTEnv)
		}
		return v, nil
	}
	return readVaultCredentialFile("auth.jwt_file", a.cfg.JWTFile)
}

// readCredentialFile reads a token-like file; surrounding whitespace is never
// part of a token, role id or JWT.
func readVaultCredentialFile(what, path string) (string, error) {
	data, err := readBounded(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("%s: %s is empty", what, path)
	}
	return v, nil
}

// ensureToken makes sure the client carries a usable token, logging in when
// the method needs it and the current login token is missing or running out.
func (b *vaultBackend) ensureToken(ctx context.Context) error {
	b.authMu.Lock()
	defer b.authMu.Unlock()
	if b.auth.cfg.Method == "token" {
		if b.haveToken {
			return nil
		}
		t, err := b.auth.userToken()
		if err != nil {
			return err
		}
		b.client.SetToken(t)
		b.haveToken = true
		return nil
	}
	if b.login != nil && b.login.usable() {
		return nil
	}
	path, body, err := b.auth.loginRequest()
	if err != nil {
		return err
	}
	bare, err := b.bareClient()
	if err != nil {
		return err
	}
	s, err := bare.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return b.apiError("login with "+b.auth.cfg.Method+" at", path, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return fmt.Errorf("vault login with %s at %s: Vault returned no token", b.auth.cfg.Method, path)
	}
	l := newLease("", time.Duration(s.Auth.LeaseDuration)*time.Second, s.Auth.Renewable)
	l.token = s.Auth.ClientToken
	if err := b.track(l, true); err != nil {
		return err
	}
	// An earlier login token stays tracked: leases it took are still in use,
	// and Close revokes it with them.
	b.login = l
	b.client.SetToken(l.token)
	return nil
}

// bareClient is a client without a token, for logins and for acting with a
// specific token. Clone re-reads VAULT_TOKEN from the process environment,
// hence the explicit reset.
func (b *vaultBackend) bareClient() (*vault.Client, error) {
	c, err := b.client.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault client: %v", err)
	}
	c.ClearToken()
	c.ClearNamespace()
	if b.namespace != "" {
		c.SetNamespace(b.namespace)
	}
	return c, nil
}
