package e2e

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests of the infisical backend. No Infisical server can run
// here, so agentvault talks to a stand-in in this test process that follows
// the wire format go-sdk v0.8.0 uses (docs/development/testing.md) and
// fails the test on any request a correct client would not send.

const infisicalProject = "proj-e2e-6f1c"

type infisicalStandIn struct {
	t                      *testing.T
	srv                    *httptest.Server
	clientID, clientSecret string

	mu      sync.Mutex
	secrets map[string]string // "/folder/KEY" -> value
	tokens  map[string]bool   // issued token -> revoked
	reads   int
}

func newInfisicalStandIn(t *testing.T, secrets map[string]string) *infisicalStandIn {
	t.Helper()
	f := &infisicalStandIn{t: t, clientID: "e2e-client-id", clientSecret: newSecret(t, "infisical-client-secret"),
		secrets: secrets, tokens: map[string]bool{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// issued returns every access token handed out and whether it was revoked.
func (f *infisicalStandIn) issued() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for k, v := range f.tokens {
		out[k] = v
	}
	return out
}

func (f *infisicalStandIn) fail(w http.ResponseWriter, status int, errName, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"reqId": "req-e2e", "statusCode": status, "message": msg, "error": errName})
}

func (f *infisicalStandIn) ok(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

func (f *infisicalStandIn) unexpected(w http.ResponseWriter, format string, a ...any) {
	f.t.Errorf("Infisical stand-in: "+format, a...)
	f.fail(w, http.StatusBadRequest, "ValidationFailure", "unexpected request")
}

// post decodes a POST's JSON body strictly.
func (f *infisicalStandIn) post(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost || mt != "application/json" {
		f.unexpected(w, "%s %s with Content-Type %q, want a JSON POST", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		f.unexpected(w, "%s: body is not the documented JSON: %v", r.URL.Path, err)
		return false
	}
	return true
}

func (f *infisicalStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ua := r.Header.Get("User-Agent"); ua != "infisical-go-sdk" {
		f.unexpected(w, "User-Agent %q", ua)
		return
	}
	switch p := r.URL.Path; {
	case p == "/api/v1/auth/universal-auth/login":
		var body struct {
			ClientID     string `json:"clientId"`
			ClientSecret string `json:"clientSecret"`
		}
		if !f.post(w, r, &body) {
			return
		}
		if r.Header.Get("Authorization") != "" {
			f.unexpected(w, "login carries an Authorization header")
			return
		}
		if body.ClientID != f.clientID || body.ClientSecret != f.clientSecret {
			f.fail(w, http.StatusUnauthorized, "UnauthorizedError", "Invalid credentials")
			return
		}
		tok := newSecret(f.t, "infisical-access-token")
		f.mu.Lock()
		f.tokens[tok] = false
		f.mu.Unlock()
		f.ok(w, map[string]any{"accessToken": tok, "expiresIn": 600, "accessTokenMaxTTL": 3600, "tokenType": "Bearer"})
	case p == "/api/v1/auth/token/revoke":
		var body struct {
			AccessToken string `json:"accessToken"`
		}
		if !f.post(w, r, &body) {
			return
		}
		f.mu.Lock()
		revoked, known := f.tokens[body.AccessToken]
		f.tokens[body.AccessToken] = true
		f.mu.Unlock()
		if !known || revoked || r.Header.Get("Authorization") != "Bearer "+body.AccessToken {
			f.unexpected(w, "revoke of an unknown or revoked token, or without its Bearer")
			return
		}
		f.ok(w, map[string]string{"message": "Successfully revoked access token"})
	case strings.HasPrefix(p, "/api/v3/secrets/raw/") && r.Method == http.MethodGet:
		key := strings.TrimPrefix(p, "/api/v3/secrets/raw/")
		q := r.URL.Query()
		want := map[string]string{"workspaceId": infisicalProject, "environment": "prod",
			"expandSecretReferences": "true", "include_imports": "true", "type": "shared"}
		for k, v := range want {
			if q.Get(k) != v {
				f.unexpected(w, "query %s=%q, want %q", k, q.Get(k), v)
				return
			}
		}
		folder := q.Get("secretPath")
		if len(q) != len(want)+1 || !strings.HasPrefix(folder, "/") || key == "" {
			f.unexpected(w, "secret read with query %v, key %q", q, key)
			return
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		revoked, known := f.tokens[tok]
		f.reads++
		value, found := f.secrets[strings.TrimSuffix(folder, "/")+"/"+key]
		f.mu.Unlock()
		switch {
		case !known || revoked:
			f.unexpected(w, "secret read with an unknown or revoked token")
		case !found:
			f.fail(w, http.StatusNotFound, "NotFound", fmt.Sprintf("Secret with name '%s' not found", key))
		default:
			f.ok(w, map[string]any{"secret": map[string]any{
				"id": "sec-1", "workspace": infisicalProject, "environment": "prod", "version": 3,
				"type": "shared", "secretKey": key, "secretValue": value, "secretComment": "",
				"secretPath": folder, "secretMetadata": []any{}, "tags": []any{}}})
		}
	default:
		f.unexpected(w, "unknown route %s %s", r.Method, p)
	}
}

func (f *infisicalStandIn) config(ref string) string {
	return fmt.Sprintf(`version: 1
backends:
  infisical:
    type: infisical
    site_url: %s
    project_id: %s
    environment: prod
    auth: {method: universal-auth}
credentials:
  - name: api
    secret: infisical:%s
    hosts: [api.example.test]
    inject: bearer
    env: [API_TOKEN]
`, f.srv.URL, infisicalProject, ref)
}

func (f *infisicalStandIn) env() map[string]string {
	return map[string]string{
		"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID":     f.clientID,
		"INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET": f.clientSecret,
	}
}

// The Infisical secret reaches the upstream, the child sees neither it nor
// the machine identity's credentials, and the access token agentvault got
// is revoked when the session ends.
func TestInfisicalRun(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	secret := newSecret(t, "infisical-value")
	f := newInfisicalStandIn(t, map[string]string{"/agents/ci/API_TOKEN": secret})
	up := newUpstream(t, true)
	s := runSession(t, sessionOpts{
		config:  f.config("/agents/ci/API_TOKEN"),
		env:     f.env(),
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script:  curlTo("echo", "https://api.example.test/echo"),
	})
	if s.code != 0 {
		t.Fatalf("exit %d, want 0", s.code)
	}
	ph := s.placeholder(t, "API_TOKEN")
	if got := onlyOne(t, up, "/echo").Header.Get("Authorization"); got != "Bearer "+secret {
		t.Errorf("upstream Authorization = %q, want Bearer <infisical secret>", redact(got, secret, ph))
	}
	for _, k := range []string{"INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET", "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID"} {
		if _, ok := s.childEnv[k]; ok {
			t.Errorf("%s reached the child", k)
		}
	}
	tokens := f.issued()
	if len(tokens) != 1 {
		t.Fatalf("%d access tokens issued, want 1", len(tokens))
	}
	all := []string{secret, f.clientSecret}
	for tok, revoked := range tokens {
		if !revoked {
			t.Error("the access token is still valid after agentvault exited")
		}
		all = append(all, tok)
	}
	s.assertNoSecret(t, all...)
}

// A secret Infisical does not have stops the run before the child starts:
// exit 69 and one line naming the credential, the secret's path and
// Infisical's message, never a credential.
func TestInfisicalRunMissingSecret(t *testing.T) {
	needBinary(t)
	f := newInfisicalStandIn(t, map[string]string{"/agents/OTHER": newSecret(t, "infisical-value")})
	dir := t.TempDir()
	_, stderr, code := run(t, f.env(), "run", "-c", writeFile(t, dir, "agentvault.yaml", f.config("/agents/MISSING")),
		"--", "sh", "-c", "touch "+filepath.Join(dir, "ran"))
	if code != 69 {
		t.Errorf("exit %d, want 69", code)
	}
	for _, want := range []string{`"api"`, "/agents/MISSING", "Secret with name 'MISSING' not found", "HTTP 404"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not mention %s: %q", want, clip(stderr))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the command ran although a credential could not be resolved")
	}
	for tok, revoked := range f.issued() {
		if !revoked {
			t.Error("the access token is still valid after the failed run")
		}
		if strings.Contains(stderr, tok) {
			t.Error("stderr reveals the access token")
		}
	}
}

// Ctrl-C on a running session still revokes the access token.
func TestInfisicalRunInterruptRevokes(t *testing.T) {
	needBinary(t)
	f := newInfisicalStandIn(t, map[string]string{"/K": newSecret(t, "infisical-value")})
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	cfg := writeFile(t, dir, "agentvault.yaml", f.config("K"))
	p := startAV(t, dir, f.env(), "run", "-c", cfg, "--", "sh", "-c", "touch "+ready+"; sleep 30")
	waitForFile(t, ready, 20*time.Second)
	tokens := f.issued()
	if len(tokens) != 1 {
		t.Fatalf("%d access tokens while the session runs, want 1", len(tokens))
	}
	for _, revoked := range tokens {
		if revoked {
			t.Fatal("the access token was revoked while the session runs")
		}
	}
	if err := p.signalGroup(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if _, _, code := p.wait(); code != 130 {
		t.Errorf("exit %d after SIGINT, want 130", code)
	}
	for _, revoked := range f.issued() {
		if !revoked {
			t.Error("the access token is still valid after agentvault was interrupted")
		}
	}
}
