package backends

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Integration tests against a real Vault dev server (see vault_server_test.go).

const kvReadPolicy = `
path "secret/data/app" { capabilities = ["read"] }
path "kv1/app" { capabilities = ["read"] }
`

// setupKV mounts a KV v1 engine at kv1/ next to the dev server's KV v2
// secret/, and writes the secrets the tests read. Values contain "s3cr3t" so
// that error messages can be checked for leaks.
func setupKV(t *testing.T, v *testVault) {
	t.Helper()
	v.write(t, "sys/mounts/kv1", map[string]any{"type": "kv", "options": map[string]any{"version": "1"}})
	v.write(t, "kv1/app", map[string]any{"token": "s3cr3t-v1-token"})
	v.write(t, "kv1/multi", map[string]any{"user": "s3cr3t-user", "password": "s3cr3t-pw"})
	v.write(t, "secret/data/app", map[string]any{"data": map[string]any{"token": "s3cr3t-v2-token-1"}})
	v.write(t, "secret/data/app", map[string]any{"data": map[string]any{"token": "s3cr3t-v2-token-2", "user": "s3cr3t-bob"}})
	// KV v1 keeps a number as written (KV v2 stores it as a float64).
	v.write(t, "kv1/num", map[string]any{"pin": json.Number("12345678901234567890123")})
	v.write(t, "secret/data/gone", map[string]any{"data": map[string]any{"token": "s3cr3t-gone"}})
	v.write(t, "secret/destroy/gone", map[string]any{"versions": []int{1}})
	if err := v.root.Sys().PutPolicy("kv-read", kvReadPolicy); err != nil {
		t.Fatal(err)
	}
}

func TestVaultKV(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	setupKV(t, v)
	b := openTestVault(t, "", map[string]string{"VAULT_ADDR": v.addr, "VAULT_TOKEN": "root"})

	tests := []struct {
		ref, want, errHas string
	}{
		{ref: "kv1/app", want: "s3cr3t-v1-token"},
		{ref: "kv1/app#token", want: "s3cr3t-v1-token"},
		{ref: "/kv1/app#token", want: "s3cr3t-v1-token"},
		{ref: "kv1/multi#password", want: "s3cr3t-pw"},
		{ref: "secret/app#token", want: "s3cr3t-v2-token-2"},
		{ref: "secret/app?version=1#token", want: "s3cr3t-v2-token-1"},
		{ref: "secret/app?version=1", want: "s3cr3t-v2-token-1"},
		{ref: "secret/app?version=2#user", want: "s3cr3t-bob"},
		{ref: "kv1/num#pin", want: "12345678901234567890123"},
		{ref: "kv1/multi", errHas: `vault reading kv1/multi: the secret has several keys ("password", "user"); name one as kv1/multi#KEY`},
		{ref: "secret/app", errHas: `several keys ("token", "user")`},
		{ref: "secret/app#nope", errHas: `vault reading secret/app: field "nope" not found (keys: "token", "user")`},
		{ref: "kv1/app#nope", errHas: `field "nope" not found (keys: "token")`},
		{ref: "secret/missing", errHas: "vault reading secret/missing: no secret at this path"},
		{ref: "kv1/missing#token", errHas: "vault reading kv1/missing: no secret at this path"},
		{ref: "secret/app?version=9", errHas: "vault reading secret/app: version 9 not found"},
		{ref: "secret/data/app#token", errHas: "secret/ is KV version 2: write the path without data/"},
		{ref: "secret/gone?version=1", errHas: "the secret version is deleted or destroyed"},
		{ref: "kv1/app?version=1", errHas: "needs a KV version 2 mount, and mount kv1/ is KV version 1"},
		{ref: "nomount/x", errHas: "vault reading nomount/x:"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			s, err := b.Resolve(context.Background(), tt.ref)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.errHas)
				}
				if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "root") {
					t.Errorf("error reveals a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Value != tt.want {
				t.Errorf("value = %q, want %q", s.Value, tt.want)
			}
			if s.LeaseID != "" || s.TTL != 0 || s.Renewable {
				t.Errorf("a KV secret came with a lifetime: %+v", Secret{LeaseID: s.LeaseID, TTL: s.TTL, Renewable: s.Renewable})
			}
		})
	}

	// KV values are read again each time, so a rotated secret is seen.
	v.write(t, "secret/data/app", map[string]any{"data": map[string]any{"token": "s3cr3t-v2-token-3"}})
	s, err := b.Resolve(context.Background(), "secret/app#token")
	if err != nil || s.Value != "s3cr3t-v2-token-3" {
		t.Errorf("after rotation: %q, %v", s.Value, err)
	}
	if got := b.ConsumedEnv(); len(got) != 1 || got[0] != "VAULT_TOKEN" {
		t.Errorf("ConsumedEnv = %q, want [VAULT_TOKEN]", got)
	}
}

// A token the user supplied is used as is, never revoked; Vault's refusal
// is reported with the path and Vault's reason.
func TestVaultUserTokenKeptAndDenied(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	setupKV(t, v)
	s, err := v.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"kv-read"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	tok := s.Auth.ClientToken
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".vault-token"), []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// From ~/.vault-token: nothing to withhold from the child.
	b := openTestVault(t, "address: "+v.addr, map[string]string{"HOME": home})
	got, err := b.Resolve(context.Background(), "secret/app#token")
	if err != nil || got.Value != "s3cr3t-v2-token-2" {
		t.Fatalf("Resolve = %q, %v", got.Value, err)
	}
	if c := b.ConsumedEnv(); len(c) != 0 {
		t.Errorf("ConsumedEnv = %q, want none", c)
	}
	for _, ref := range []string{"kv1/multi#user", "secret/other#x"} {
		_, err = b.Resolve(context.Background(), ref)
		path, _, _ := strings.Cut(ref, "#")
		if err == nil || !strings.Contains(err.Error(), "vault reading "+path+": ") ||
			!strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "HTTP 403") {
			t.Errorf("Resolve(%s) err = %v, want permission denied naming the path", ref, err)
		}
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("error reveals the token: %v", err)
		}
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !v.tokenValid(t, tok) {
		t.Error("Close revoked the user's own token")
	}
}

// setupAppRole enables AppRole with a role reading kv-read and returns
// role_id and a fresh secret_id.
func setupAppRole(t *testing.T, v *testVault, role string, opts map[string]any) (roleID, secretID string) {
	t.Helper()
	mounts, err := v.root.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mounts["approle/"]; !ok {
		if err := v.root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
			t.Fatal(err)
		}
	}
	body := map[string]any{"token_policies": []string{"kv-read"}, "token_ttl": "10m"}
	for k, val := range opts {
		body[k] = val
	}
	v.write(t, "auth/approle/role/"+role, body)
	s, err := v.root.Logical().Read("auth/approle/role/" + role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID = s.Data["role_id"].(string)
	s = v.write(t, "auth/approle/role/"+role+"/secret-id", nil)
	return roleID, s.Data["secret_id"].(string)
}

func TestVaultAppRole(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	setupKV(t, v)
	roleID, secretID := setupAppRole(t, v, "agent", nil)
	secretFile := filepath.Join(t.TempDir(), "secret_id")
	if err := os.WriteFile(secretFile, []byte(secretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("secret_id_file", func(t *testing.T) {
		doc := "address: " + v.addr + "\nauth:\n  method: approle\n  role_id: " + roleID + "\n  secret_id_file: " + secretFile
		// The user's own token in the environment is withheld from the
		// child, but not used and not revoked.
		b := openTestVault(t, doc, map[string]string{"VAULT_TOKEN": "root"})
		s, err := b.Resolve(context.Background(), "secret/app#token")
		if err != nil || s.Value != "s3cr3t-v2-token-2" {
			t.Fatalf("Resolve = %q, %v", s.Value, err)
		}
		if c := b.ConsumedEnv(); len(c) != 1 || c[0] != "VAULT_TOKEN" {
			t.Errorf("ConsumedEnv = %q", c)
		}
		login := b.login.token
		if login == "" || login == "root" || !v.tokenValid(t, login) {
			t.Fatal("no live login token after Resolve")
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if v.tokenValid(t, login) {
			t.Error("the login token agentvault created survived Close")
		}
		if !v.tokenValid(t, "root") {
			t.Error("Close revoked the user's token")
		}
	})

	t.Run("from environment", func(t *testing.T) {
		b := openTestVault(t, "address: "+v.addr+"\nauth: {method: approle}",
			map[string]string{"VAULT_ROLE_ID": roleID, "VAULT_SECRET_ID": secretID})
		s, err := b.Resolve(context.Background(), "kv1/app")
		if err != nil || s.Value != "s3cr3t-v1-token" {
			t.Fatalf("Resolve = %q, %v", s.Value, err)
		}
		want := []string{"VAULT_ROLE_ID", "VAULT_SECRET_ID"}
		if c := b.ConsumedEnv(); strings.Join(c, ",") != strings.Join(want, ",") {
			t.Errorf("ConsumedEnv = %q, want %q", c, want)
		}
	})

	t.Run("wrong secret_id", func(t *testing.T) {
		bad := "0000-s3cr3t-wrong"
		b := openTestVault(t, "address: "+v.addr+"\nauth: {method: approle, role_id: "+roleID+", secret_id: "+bad+"}", nil)
		_, err := b.Resolve(context.Background(), "secret/app#token")
		if err == nil || !strings.Contains(err.Error(), "vault login with approle at auth/approle/login") ||
			!strings.Contains(err.Error(), "HTTP 400") {
			t.Fatalf("err = %v, want a login failure naming the mount", err)
		}
		if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), roleID) {
			t.Errorf("error reveals a credential: %v", err)
		}
	})
}

// A login token with a short TTL is renewed while the backend is open, and
// replaced by a new login once its max TTL caps renewal.
func TestVaultLoginTokenRenewal(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	setupKV(t, v)
	roleID, secretID := setupAppRole(t, v, "short", map[string]any{
		"token_ttl": "2s", "token_max_ttl": "5s", "secret_id_num_uses": 0,
	})
	b := openTestVault(t, "address: "+v.addr+"\nauth: {method: approle, role_id: "+roleID+", secret_id: "+secretID+"}", nil)
	if _, err := b.Resolve(context.Background(), "secret/app#token"); err != nil {
		t.Fatal(err)
	}
	first := b.login
	time.Sleep(3500 * time.Millisecond) // past the 2s TTL: alive only if renewed
	if !v.tokenValid(t, first.token) {
		t.Fatal("login token expired although the backend is open")
	}
	if _, err := b.Resolve(context.Background(), "secret/app#token"); err != nil {
		t.Fatal(err)
	}
	if b.login != first {
		t.Error("logged in again while the first token was still renewed")
	}
	time.Sleep(2500 * time.Millisecond) // past the 5s max TTL
	if _, err := b.Resolve(context.Background(), "secret/app#token"); err != nil {
		t.Fatalf("Resolve after the max TTL: %v", err)
	}
	if b.login == first {
		t.Error("no new login after the first token reached its max TTL")
	}
	second := b.login.token
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v.tokenValid(t, second) {
		t.Error("second login token survived Close")
	}
}

// jwtKey signs test JWTs that Vault's jwt auth verifies with the public key.
type jwtKey struct{ key *ecdsa.PrivateKey }

func newJWTKey(t *testing.T) *jwtKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtKey{k}
}

func (k *jwtKey) publicPEM(t *testing.T) string {
	der, err := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// sign makes an ES256 JWT: the signature is r||s, 32 bytes each (RFC 7518 3.4).
func (k *jwtKey) sign(t *testing.T, claims map[string]any) string {
	enc := base64.RawURLEncoding.EncodeToString
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := enc([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc(payload)
	h := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, k.key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + enc(sig)
}

func TestVaultJWT(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	setupKV(t, v)
	key := newJWTKey(t)
	const issuer = "https://ci.example.test"
	if err := v.root.Sys().EnableAuthWithOptions("ci-jwt", &vault.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	v.write(t, "auth/ci-jwt/config", map[string]any{
		"jwt_validation_pubkeys": []string{key.publicPEM(t)},
		"bound_issuer":           issuer,
	})
	v.write(t, "auth/ci-jwt/role/ci", map[string]any{
		"role_type":       "jwt",
		"bound_audiences": []string{"agentvault-test"},
		"user_claim":      "sub",
		"token_policies":  []string{"kv-read"},
		"token_ttl":       "10m",
	})
	now := time.Now().Unix()
	claims := func(aud string) map[string]any {
		return map[string]any{"iss": issuer, "sub": "repo:agentvault:ref:main", "aud": aud,
			"iat": now, "nbf": now - 5, "exp": now + 300}
	}
	good := key.sign(t, claims("agentvault-test"))
	jwtFile := filepath.Join(t.TempDir(), "jwt")
	if err := os.WriteFile(jwtFile, []byte(good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, auth   string
		env          map[string]string
		errHas       string
		wantConsumed string
	}{
		{name: "jwt_env", auth: "{method: jwt, path: ci-jwt, role: ci, jwt_env: CI_ID_TOKEN}",
			env: map[string]string{"CI_ID_TOKEN": good}, wantConsumed: "CI_ID_TOKEN"},
		{name: "jwt_file", auth: "{method: jwt, path: ci-jwt, role: ci, jwt_file: " + jwtFile + "}"},
		{name: "wrong audience", auth: "{method: jwt, path: ci-jwt, role: ci, jwt_env: CI_ID_TOKEN}",
			env:    map[string]string{"CI_ID_TOKEN": key.sign(t, claims("someone-else"))},
			errHas: "vault login with jwt at auth/ci-jwt/login: ", wantConsumed: "CI_ID_TOKEN"},
		{name: "foreign key", auth: "{method: jwt, path: ci-jwt, role: ci, jwt_env: CI_ID_TOKEN}",
			env:    map[string]string{"CI_ID_TOKEN": newJWTKey(t).sign(t, claims("agentvault-test"))},
			errHas: "vault login with jwt at auth/ci-jwt/login: ", wantConsumed: "CI_ID_TOKEN"},
		{name: "unset env", auth: "{method: jwt, path: ci-jwt, role: ci, jwt_env: CI_ID_TOKEN}",
			errHas: "auth.jwt_env: $CI_ID_TOKEN is not set or empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := openTestVault(t, "address: "+v.addr+"\nauth: "+tt.auth, tt.env)
			if got := strings.Join(b.ConsumedEnv(), ","); got != tt.wantConsumed {
				t.Errorf("ConsumedEnv = %q, want %q", got, tt.wantConsumed)
			}
			s, err := b.Resolve(context.Background(), "secret/app#user")
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.errHas)
				}
				if strings.Contains(err.Error(), "eyJ") {
					t.Errorf("error reveals the JWT: %v", err)
				}
				return
			}
			if err != nil || s.Value != "s3cr3t-bob" {
				t.Fatalf("Resolve = %q, %v", s.Value, err)
			}
			login := b.login.token
			if err := b.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if v.tokenValid(t, login) {
				t.Error("the login token survived Close")
			}
		})
	}
}

func TestVaultUserpass(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	setupKV(t, v)
	if err := v.root.Sys().EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	v.write(t, "auth/userpass/users/agent", map[string]any{"password": "s3cr3t-pass", "token_policies": "kv-read"})
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cr3t-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{
		"{method: userpass, username: agent, password_env: AGENT_PW}",
		"{method: userpass, username: agent, password_file: " + pwFile + "}",
	} {
		b := openTestVault(t, "address: "+v.addr+"\nauth: "+auth, map[string]string{"AGENT_PW": "s3cr3t-pass"})
		s, err := b.Resolve(context.Background(), "kv1/app#token")
		if err != nil || s.Value != "s3cr3t-v1-token" {
			t.Errorf("%s: Resolve = %q, %v", auth, s.Value, err)
		}
	}
	b := openTestVault(t, "address: "+v.addr+"\nauth: {method: userpass, username: agent, password_env: AGENT_PW}",
		map[string]string{"AGENT_PW": "s3cr3t-wrong"})
	_, err := b.Resolve(context.Background(), "kv1/app#token")
	if err == nil || !strings.Contains(err.Error(), "vault login with userpass at auth/userpass/login/agent: invalid username or password") {
		t.Errorf("err = %v", err)
	}
}
