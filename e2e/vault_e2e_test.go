package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentvault/agentvault/internal/testsupport"
)

// End-to-end tests of the vault backend: `agentvault run` against a real
// Vault dev server (built once per machine by scripts/vault-server, which
// .ci/run calls before the tests).

// devVault is a running `vault server -dev` with root token "root".
type devVault struct{ addr string }

func startDevVault(t *testing.T) *devVault {
	t.Helper()
	bin, err := testsupport.VaultBinary()
	if err != nil {
		skipOutsideCI(t, err.Error())
	}
	return &devVault{addr: testsupport.StartVault(t, bin)}
}

// call makes one Vault API request as root and returns the JSON answer's
// "data"; a status other than 2xx fails the test.
func (v *devVault) call(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, v.addr+"/v1/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", "root")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("vault %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("vault %s %s: HTTP %d: %s", method, path, resp.StatusCode, raw)
	}
	var out struct {
		Data map[string]any `json:"data"`
		Auth map[string]any `json:"auth"`
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("vault %s %s: %v", method, path, err)
		}
	}
	if out.Data == nil {
		out.Data = out.Auth
	}
	return out.Data
}

// tokenAlive reports whether a token (looked up by its value) still exists.
func (v *devVault) tokenAlive(t *testing.T, tok string) bool {
	t.Helper()
	js, _ := json.Marshal(map[string]string{"token": tok})
	req, _ := http.NewRequest(http.MethodPost, v.addr+"/v1/auth/token/lookup", bytes.NewReader(js))
	req.Header.Set("X-Vault-Token", "root")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// roleTokens counts the live tokens an AppRole role has logged in.
func (v *devVault) roleTokens(t *testing.T, role string) int {
	t.Helper()
	n := 0
	keys, _ := v.call(t, "LIST", "auth/token/accessors", nil)["keys"].([]any)
	for _, k := range keys {
		d := v.call(t, http.MethodPost, "auth/token/lookup-accessor", map[string]any{"accessor": k})
		if meta, ok := d["meta"].(map[string]any); ok && meta["role_name"] == role {
			n++
		}
	}
	return n
}

const vaultAPIConfig = `version: 1
credentials:
  - name: api
    secret: vault:secret/agents/api#token
    hosts: [api.example.test]
    inject: bearer
    env: [API_TOKEN]
`

// With the user's own VAULT_TOKEN: the KV secret reaches the upstream, the
// child has neither the secret nor VAULT_TOKEN, and the user's token lives on.
func TestVaultRunUserToken(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	v := startDevVault(t)
	secret := newSecret(t, "vault-kv")
	vaultToken := newSecret(t, "vault-token")
	v.call(t, http.MethodPost, "secret/data/agents/api", map[string]any{"data": map[string]any{"token": secret}})
	v.call(t, http.MethodPost, "auth/token/create", map[string]any{"id": vaultToken, "policies": []string{"root"}, "ttl": "10m"})

	up := newUpstream(t, true)
	s := runSession(t, sessionOpts{
		config:  vaultAPIConfig,
		env:     map[string]string{"VAULT_ADDR": v.addr, "VAULT_TOKEN": vaultToken},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script:  curlTo("echo", "https://api.example.test/echo"),
	})
	if s.code != 0 {
		t.Fatalf("exit %d, want 0", s.code)
	}
	ph := s.placeholder(t, "API_TOKEN")
	if got := onlyOne(t, up, "/echo").Header.Get("Authorization"); got != "Bearer "+secret {
		t.Errorf("upstream Authorization = %q, want Bearer <vault secret>", redact(got, secret, ph))
	}
	if _, ok := s.childEnv["VAULT_TOKEN"]; ok {
		t.Error("VAULT_TOKEN reached the child")
	}
	if s.childEnv["VAULT_ADDR"] != v.addr {
		t.Errorf("VAULT_ADDR in the child = %q, want it kept (%s)", s.childEnv["VAULT_ADDR"], v.addr)
	}
	s.assertNoSecret(t, secret, vaultToken)
	if !v.tokenAlive(t, vaultToken) {
		t.Error("agentvault revoked the user's own Vault token")
	}
}

// setupAppRole stores secret at secret/agents/api and makes AppRole "agent"
// able to read it; it returns the role_id and a secret_id.
func (v *devVault) setupAppRole(t *testing.T, secret string) (roleID, secretID string) {
	t.Helper()
	v.call(t, http.MethodPost, "secret/data/agents/api", map[string]any{"data": map[string]any{"token": secret}})
	v.call(t, http.MethodPut, "sys/policy/agent", map[string]any{"policy": `path "secret/data/agents/*" { capabilities = ["read"] }`})
	v.call(t, http.MethodPost, "sys/auth/approle", map[string]any{"type": "approle"})
	v.call(t, http.MethodPost, "auth/approle/role/agent", map[string]any{"token_policies": []string{"agent"}, "token_ttl": "10m"})
	roleID, _ = v.call(t, http.MethodGet, "auth/approle/role/agent/role-id", nil)["role_id"].(string)
	secretID, _ = v.call(t, http.MethodPost, "auth/approle/role/agent/secret-id", nil)["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatal("no role_id/secret_id from Vault")
	}
	return roleID, secretID
}

// With AppRole from the environment: the login token agentvault created is
// revoked when the session ends, and the AppRole variables do not reach the child.
func TestVaultRunAppRoleTokenRevoked(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	v := startDevVault(t)
	secret := newSecret(t, "vault-kv")
	roleID, secretID := v.setupAppRole(t, secret)
	up := newUpstream(t, true)
	s := runSession(t, sessionOpts{
		config:  vaultAPIConfig + "backends:\n  vault:\n    auth: {method: approle}\n",
		env:     map[string]string{"VAULT_ADDR": v.addr, "VAULT_ROLE_ID": roleID, "VAULT_SECRET_ID": secretID},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script:  curlTo("echo", "https://api.example.test/echo"),
	})
	if s.code != 0 {
		t.Fatalf("exit %d, want 0", s.code)
	}
	if got := onlyOne(t, up, "/echo").Header.Get("Authorization"); got != "Bearer "+secret {
		t.Errorf("upstream did not get the Vault secret as a bearer token")
	}
	for _, k := range []string{"VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_TOKEN"} {
		if _, ok := s.childEnv[k]; ok {
			t.Errorf("%s reached the child", k)
		}
	}
	s.assertNoSecret(t, secret, secretID)
	if n := v.roleTokens(t, "agent"); n != 0 {
		t.Errorf("%d AppRole login token(s) still alive after agentvault exited", n)
	}
}

// Ctrl-C on a running session still revokes the login token agentvault
// created, before agentvault exits.
func TestVaultRunInterruptRevokes(t *testing.T) {
	needBinary(t)
	v := startDevVault(t)
	roleID, secretID := v.setupAppRole(t, newSecret(t, "vault-kv"))
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	cfg := writeFile(t, dir, "agentvault.yaml", vaultAPIConfig+"backends:\n  vault:\n    auth: {method: approle}\n")
	p := startAV(t, dir, map[string]string{"VAULT_ADDR": v.addr, "VAULT_ROLE_ID": roleID, "VAULT_SECRET_ID": secretID},
		"run", "-c", cfg, "--", "sh", "-c", "touch "+ready+"; sleep 30")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child did not start within 20s")
		}
	}
	if n := v.roleTokens(t, "agent"); n != 1 {
		t.Fatalf("%d AppRole login tokens while the session runs, want 1", n)
	}
	if err := p.signalGroup(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_, _, code := p.wait()
	if code != 130 {
		t.Errorf("exit %d after SIGINT, want 130", code)
	}
	if n := v.roleTokens(t, "agent"); n != 0 {
		t.Errorf("%d AppRole login token(s) alive after agentvault was interrupted", n)
	}
}

// A path Vault does not have stops the run before the child starts: exit 69
// and one line naming the credential and the path, never the token.
func TestVaultRunMissingPath(t *testing.T) {
	needBinary(t)
	v := startDevVault(t)
	vaultToken := newSecret(t, "vault-token")
	v.call(t, http.MethodPost, "auth/token/create", map[string]any{"id": vaultToken, "policies": []string{"root"}, "ttl": "10m"})
	cfg := strings.Replace(vaultAPIConfig, "secret/agents/api#token", "secret/agents/missing#token", 1)
	dir := t.TempDir()
	_, stderr, code := run(t, map[string]string{"VAULT_ADDR": v.addr, "VAULT_TOKEN": vaultToken},
		"run", "-c", writeFile(t, dir, "agentvault.yaml", cfg), "--", "sh", "-c", "touch "+filepath.Join(dir, "ran"))
	if code != 69 {
		t.Errorf("exit %d, want 69", code)
	}
	for _, want := range []string{`"api"`, "secret/agents/missing", "no secret at this path"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not mention %s: %q", want, clip(stderr))
		}
	}
	if strings.Contains(stderr, vaultToken) {
		t.Error("stderr reveals the Vault token")
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the command ran although a credential could not be resolved")
	}
}
