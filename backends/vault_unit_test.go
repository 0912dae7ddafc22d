package backends

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentvault/agentvault/internal/testsupport"
)

// Tests of the vault backend that need no server.

func TestParseVaultRef(t *testing.T) {
	tests := []struct {
		ref     string
		want    vaultRef
		errHas  string
		wantErr bool
	}{
		{ref: "secret/app", want: vaultRef{path: "secret/app"}},
		{ref: "/secret/app#token", want: vaultRef{path: "secret/app", field: "token"}},
		{ref: "secret/app?version=3#token", want: vaultRef{path: "secret/app", version: 3, field: "token"}},
		{ref: "database/creds/ro", want: vaultRef{path: "database/creds/ro"}},
		{ref: "", errHas: "empty Vault path"},
		{ref: "#token", errHas: "empty Vault path"},
		{ref: "secret/app?version=0", errHas: "positive integer"},
		{ref: "secret/app?version=x", errHas: "positive integer"},
		{ref: "secret/app?version=1&version=2", errHas: "more than once"},
		{ref: "secret/app?stage=old", errHas: `unknown query parameter "stage"`},
		{ref: "secret/app?%zz", errHas: "bad query"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := parseVaultRef(tt.ref)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVaultAPIPath(t *testing.T) {
	v2 := mountInfo{path: "secret/", typ: "kv", kvVersion: 2}
	v1 := mountInfo{path: "kv/", typ: "kv", kvVersion: 1}
	db := mountInfo{path: "database/", typ: "database", kvVersion: 1}
	tests := []struct {
		ref, want, query, errHas string
		m                        mountInfo
	}{
		{ref: "secret/a/b", m: v2, want: "secret/data/a/b"},
		{ref: "secret/a?version=2", m: v2, want: "secret/data/a", query: "version=2"},
		{ref: "secret/", m: v2, errHas: "names the KV mount secret/ itself"},
		{ref: "kv/a", m: v1, want: "kv/a"},
		{ref: "kv/a?version=1", m: v1, errHas: "mount kv/ is KV version 1"},
		{ref: "database/creds/r", m: db, want: "database/creds/r"},
		{ref: "database/creds/r?version=1", m: db, errHas: "mount database/ is a database engine"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			r, err := parseVaultRef(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			got, q, err := r.apiPath(tt.m)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || q.Encode() != tt.query {
				t.Errorf("got %s?%s, want %s?%s", got, q.Encode(), tt.want, tt.query)
			}
		})
	}
}

func TestVaultSelectValue(t *testing.T) {
	data := func(js string) map[string]any {
		d := json.NewDecoder(strings.NewReader(js))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name   string
		field  string
		data   string
		leased bool
		want   string
		errHas string
	}{
		{name: "single key", data: `{"token":"s3cr3t-single"}`, want: "s3cr3t-single"},
		{name: "field", field: "b", data: `{"a":"s3cr3t-a","b":"s3cr3t-b"}`, want: "s3cr3t-b"},
		{name: "long number", field: "pin", data: `{"pin":12345678901234567890123}`, want: "12345678901234567890123"},
		{name: "bool", field: "on", data: `{"on":true}`, want: "true"},
		{name: "object as JSON", field: "sa", data: `{"sa":{"k":"s3cr3t-obj"}}`, want: `{"k":"s3cr3t-obj"}`},
		{name: "null field", field: "x", data: `{"x":null,"y":"s3cr3t-y"}`, errHas: `field "x" is null`},
		{name: "missing field lists keys", field: "nope", data: `{"a":"s3cr3t-a","b":"s3cr3t-b"}`, errHas: `field "nope" not found (keys: "a", "b")`},
		{name: "several keys", data: `{"a":"s3cr3t-a","b":"s3cr3t-b"}`, errHas: `several keys ("a", "b"); name one as p/x#KEY`},
		{name: "empty", data: `{}`, errHas: "has no data"},
		{name: "leased several keys give JSON without nulls", leased: true,
			data: `{"access_key":"AKIAs3cr3t","secret_key":"s3cr3t-sk","security_token":null}`,
			want: `{"access_key":"AKIAs3cr3t","secret_key":"s3cr3t-sk"}`},
		{name: "leased single key", leased: true, data: `{"token":"s3cr3t-t"}`, want: "s3cr3t-t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selectValue(vaultRef{path: "p/x", field: tt.field}, data(tt.data), tt.leased)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.errHas)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("error reveals a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVaultOpenConfig(t *testing.T) {
	addr := "address: http://127.0.0.1:1\n"
	tests := []struct {
		name, doc    string
		env          map[string]string
		errHas       string
		wantConsumed []string
	}{
		{name: "address from env", doc: "", env: map[string]string{"VAULT_ADDR": "http://127.0.0.1:1"}},
		{name: "no address", doc: "", errHas: "no Vault address"},
		{name: "bad address", doc: "address: '://x'", errHas: "vault client for ://x"},
		{name: "token env consumed", doc: addr, env: map[string]string{"VAULT_TOKEN": "t", "VAULT_ADDR": "x", "HOME": "/h"},
			wantConsumed: []string{"VAULT_TOKEN"}},
		{name: "vault credentials withheld whatever the method",
			doc:          addr + "auth: {method: jwt, jwt_env: CI_JWT, role: r}",
			env:          map[string]string{"VAULT_TOKEN": "t", "VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s", "CI_JWT": "j", "OTHER": "o"},
			wantConsumed: []string{"CI_JWT", "VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_TOKEN"}},
		{name: "approle from env", doc: addr + "auth: {method: approle}",
			env:          map[string]string{"VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s"},
			wantConsumed: []string{"VAULT_ROLE_ID", "VAULT_SECRET_ID"}},
		{name: "approle needs a role id", doc: addr + "auth: {method: approle}", errHas: "needs role_id"},
		{name: "approle both secret ids", doc: addr + "auth: {method: approle, role_id: r, secret_id: s, secret_id_file: /f}", errHas: "not both"},
		{name: "userpass password env", doc: addr + "auth: {method: userpass, username: u, password_env: PW}",
			env: map[string]string{"PW": "p"}, wantConsumed: []string{"PW"}},
		{name: "userpass needs username", doc: addr + "auth: {method: userpass, password_env: PW}", errHas: "needs username"},
		{name: "userpass needs one password", doc: addr + "auth: {method: userpass, username: u}", errHas: "exactly one of password_file and password_env"},
		{name: "jwt needs a source", doc: addr + "auth: {method: jwt, role: r}", errHas: "exactly one of jwt_file and jwt_env"},
		{name: "kubernetes needs role", doc: addr + "auth: {method: kubernetes}", errHas: "needs role"},
		{name: "kubernetes ok", doc: addr + "auth: {method: kubernetes, role: r, path: k8s/}"},
		{name: "key of another method", doc: addr + "auth: {method: token, role_id: r}", errHas: "auth.role_id does not apply to auth method token"},
		{name: "path with token", doc: addr + "auth: {method: token, path: x}", errHas: "auth.path does not apply"},
		{name: "unknown method", doc: addr + "auth: {method: github}", errHas: `auth.method "github" is not supported`},
		{name: "unknown key", doc: addr + "auth: {method: token, tokenfile: x}", errHas: "field tokenfile not found"},
		{name: "negative timeout", doc: addr + "timeout: -1s", errHas: "must not be negative"},
		{name: "missing ca_cert", doc: addr + "ca_cert: /nonexistent/ca.pem", errHas: "ca_cert /nonexistent/ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(Options{Name: "vault", Type: "vault", Decode: yamlDecode(t, tt.doc), LookupEnv: vaultEnv(tt.env)})
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close(context.Background())
			got := b.ConsumedEnv()
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tt.wantConsumed) {
				t.Errorf("ConsumedEnv = %q, want %q", got, tt.wantConsumed)
			}
		})
	}
}

func TestVaultUserToken(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".vault-token"), []byte("hvs.from-home\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "tok")
	if err := os.WriteFile(tokFile, []byte("  hvs.from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyHome := t.TempDir()
	tests := []struct {
		name, tokenFile string
		env             map[string]string
		want, errHas    string
	}{
		{name: "token_file first", tokenFile: tokFile, env: map[string]string{"VAULT_TOKEN": "hvs.env", "HOME": home}, want: "hvs.from-file"},
		{name: "then VAULT_TOKEN", env: map[string]string{"VAULT_TOKEN": "hvs.env", "HOME": home}, want: "hvs.env"},
		{name: "then ~/.vault-token", env: map[string]string{"HOME": home}, want: "hvs.from-home"},
		{name: "empty VAULT_TOKEN falls through", env: map[string]string{"VAULT_TOKEN": "", "HOME": home}, want: "hvs.from-home"},
		{name: "none", env: map[string]string{"HOME": emptyHome}, errHas: "no Vault token"},
		{name: "missing token_file", tokenFile: filepath.Join(dir, "nope"), errHas: "auth.token_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newVaultAuth(vaultAuthConfig{TokenFile: tt.tokenFile}, vaultEnv(tt.env), func(string) {})
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.userToken()
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.errHas)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d", testsupport.FreePort(t))
}

func TestVaultUnreachable(t *testing.T) {
	t.Parallel()
	b := openTestVault(t, "address: "+closedAddr(t), map[string]string{"VAULT_TOKEN": "hvs.s3cr3t-token"})
	start := time.Now()
	_, err := b.Resolve(context.Background(), "secret/app#token")
	if err == nil {
		t.Fatal("no error from an unreachable Vault")
	}
	msg := err.Error()
	for _, want := range []string{"secret/app", "unreachable", "connection refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cr3t") {
		t.Errorf("error reveals the token: %q", msg)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s", d)
	}
}

// Close must finish within the caller's deadline even when Vault is gone,
// report what it could not revoke, and be idempotent.
func TestVaultCloseBounded(t *testing.T) {
	t.Parallel()
	b := openTestVault(t, "address: "+closedAddr(t), map[string]string{"VAULT_TOKEN": "hvs.s3cr3t-token"})
	b.client.SetToken("hvs.s3cr3t-token")
	if err := b.track(newLease("database/creds/r/abc", time.Hour, true), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.Close(ctx)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Close took %s with a 1.5s deadline", d)
	}
	if err == nil || !strings.Contains(err.Error(), "revoking lease database/creds/r/abc") {
		t.Errorf("Close error = %v, want it to name the lease", err)
	}
	if strings.Contains(fmt.Sprint(err), "s3cr3t") {
		t.Errorf("error reveals the token: %v", err)
	}
	if err2 := b.Close(context.Background()); err2 != err {
		t.Errorf("second Close = %v, want the first result %v", err2, err)
	}
	if _, err := b.Resolve(context.Background(), "secret/x"); !errors.Is(err, errVaultClosed) {
		t.Errorf("Resolve after Close = %v, want errVaultClosed", err)
	}
	// A lease taken by a Resolve racing Close is given back, not kept.
	if err := b.track(newLease("database/creds/r/late", time.Hour, true), false); !errors.Is(err, errVaultClosed) {
		t.Errorf("track after Close = %v", err)
	}
}

func TestVaultLeaseUsable(t *testing.T) {
	tests := []struct {
		name     string
		ttl      time.Duration
		left     time.Duration
		renewing bool
		dead     bool
		want     bool
	}{
		{name: "no expiry", ttl: 0, want: true},
		{name: "fresh", ttl: time.Minute, left: 50 * time.Second, want: true},
		{name: "nearly out, not renewed", ttl: time.Minute, left: 10 * time.Second, want: false},
		{name: "nearly out, renewing", ttl: time.Minute, left: 10 * time.Second, renewing: true, want: true},
		{name: "expired", ttl: time.Minute, left: -time.Second, renewing: true, want: false},
		{name: "dead", ttl: time.Minute, left: 50 * time.Second, dead: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLease("x", tt.ttl, true)
			if tt.ttl > 0 {
				l.expiry = time.Now().Add(tt.left)
			}
			l.renewing, l.dead = tt.renewing, tt.dead
			if got := l.usable(); got != tt.want {
				t.Errorf("usable() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVaultReasons(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"permission denied"}, "permission denied"},
		{[]string{"1 error occurred:\n\t* permission denied\n\n"}, "permission denied"},
		{[]string{"2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"}, "permission denied; invalid token"},
		{[]string{"a", "b"}, "a; b"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := vaultReasons(tt.in); got != tt.want {
			t.Errorf("vaultReasons(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
