package backends

import (
	"context"
	"strings"
	"testing"

	"github.com/agentvault/agentvault/internal/testsupport"
	vault "github.com/hashicorp/vault/api"
)

// The Vault tests run against a real `vault server -dev`, built once per
// machine by scripts/vault-server (which .ci/run calls before the tests).

// testVault is a running dev server and a root client for setting it up.
type testVault struct {
	addr string
	root *vault.Client
}

// startVault starts a dev server on a free loopback port with root token
// "root" and stops it when the test ends. With no cached Vault binary it
// fails the test in CI and skips it elsewhere: building one takes ~20
// minutes, which is the setup script's job, not go test's.
func startVault(t *testing.T) *testVault {
	t.Helper()
	bin, err := testsupport.VaultBinary()
	if err != nil {
		vaultSkipOrFail(t, err.Error())
	}
	addr := testsupport.StartVault(t, bin)
	return &testVault{addr: addr, root: vaultTestClient(t, addr, "root")}
}

// vaultTestClient is an api client for setup and verification with token tok.
func vaultTestClient(t *testing.T, addr, tok string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.ClearNamespace()
	c.SetToken(tok)
	return c
}

// write is a setup write that must succeed.
func (v *testVault) write(t *testing.T, path string, data map[string]any) *vault.Secret {
	t.Helper()
	s, err := v.root.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("setup write %s: %v", path, err)
	}
	return s
}

// tokenValid reports whether tok is still a live token.
func (v *testVault) tokenValid(t *testing.T, tok string) bool {
	t.Helper()
	s, err := v.root.Auth().Token().Lookup(tok)
	if err != nil {
		if strings.Contains(err.Error(), "bad token") || strings.Contains(err.Error(), "invalid token") {
			return false
		}
		t.Fatalf("token lookup: %v", err)
	}
	return s != nil
}

// openTestVault opens the backend with the YAML doc and environment env.
func openTestVault(t *testing.T, doc string, env map[string]string) *vaultBackend {
	t.Helper()
	b, err := Open(Options{Name: "vault", Type: "vault", Decode: yamlDecode(t, doc), LookupEnv: vaultEnv(env)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	vb := b.(*vaultBackend)
	t.Cleanup(func() { _ = vb.Close(context.Background()) })
	return vb
}

func vaultEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}
