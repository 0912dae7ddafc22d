package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// claudeFake adds to fakeLogin the one API call `claude -p` needs: the
// Messages API, streamed, answering only the current real access token.
type claudeFake struct {
	*fakeLogin
	paths []string // every request, "METHOD host path"
}

func (c *claudeFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.fakeLogin.mu.Lock()
	c.paths = append(c.paths, r.Method+" "+r.Host+" "+r.URL.Path)
	c.fakeLogin.mu.Unlock()
	if r.Host != c.apiHost || r.URL.Path != "/v1/messages" {
		c.fakeLogin.ServeHTTP(w, r)
		return
	}
	c.fakeLogin.mu.Lock()
	auth := r.Header.Get("Authorization")
	c.apiAuth = append(c.apiAuth, auth)
	ok := auth == "Bearer "+c.access[len(c.access)-1]
	c.fakeLogin.mu.Unlock()
	io.Copy(io.Discard, r.Body)
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid token"}}`)
		return
	}
	msg := map[string]any{"id": "msg_broker", "type": "message", "role": "assistant", "model": "claude-fake",
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": 5, "output_tokens": 1}}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, e := range []struct {
		name string
		data any
	}{
		{"message_start", map[string]any{"type": "message_start", "message": msg}},
		{"content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}}},
		{"content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": "brokered login works"}}},
		{"content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}},
		{"message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 3}}},
		{"message_stop", map[string]any{"type": "message_stop"}},
	} {
		b, _ := json.Marshal(e.data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.name, b)
	}
}

// TestBrokeredLoginClaudeCode: the real Claude Code, logged in with a
// Claude Max subscription whose access token has expired, runs `claude -p`
// under logins: [claude] and --strict. It refreshes at start through the
// broker, then asks the Messages API with the new token and prints the
// fake's answer. The endpoint and API see only real tokens; no real token
// is in the CLI's environment, output or any file under HOME but the
// user's own store, which holds the refreshed tokens afterwards.
func TestBrokeredLoginClaudeCode(t *testing.T) {
	dir := agentCLIDir(t)
	tok := func(prefix string) func() string {
		return func() string { return randomToken(t, prefix, b64url, 95) + "AA" }
	}
	f := &claudeFake{fakeLogin: &fakeLogin{tokenHost: "platform.claude.com", tokenPath: "/v1/oauth/token", apiHost: "api.anthropic.com",
		newAccess: tok("sk-ant-oat01-"), newRefresh: tok("sk-ant-ort01-")}}
	access, refresh := f.newAccess(), f.newRefresh()
	f.access, f.refresh = []string{access}, refresh
	f.fakeLogin.start(t, f)

	home := t.TempDir()
	store := filepath.Join(home, ".claude", ".credentials.json")
	os.MkdirAll(filepath.Dir(store), 0o700)
	creds, _ := json.Marshal(map[string]any{"claudeAiOauth": map[string]any{
		"accessToken": access, "refreshToken": refresh,
		"expiresAt":        time.Now().Add(-time.Hour).UnixMilli(), // expired: the CLI refreshes first
		"scopes":           []string{"user:inference", "user:profile", "user:sessions:claude_code"},
		"subscriptionType": "max", "rateLimitTier": "default_claude_max_20x",
	}})
	if err := os.WriteFile(store, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "claude")
	s := runSession(t, sessionOpts{
		config: "version: 1\nlogins: [claude]\n",
		env: map[string]string{"HOME": home, "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
			"DISABLE_AUTOUPDATER": "1", "DISABLE_BUG_COMMAND": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
		flags:   []string{"--upstream-ca", f.caPEM, "--strict"},
		connect: []string{connectTo(f.tokenHost, 443, f.port), connectTo(f.apiHost, 443, f.port)},
		script: fmt.Sprintf(`cd "$HOME"
timeout 60 %s -p 'Say hi.' --tools '' --output-format json < /dev/null > "$OUT/cli.out" 2> "$OUT/cli.err"
`, shellQuote(bin)),
	})
	f.fakeLogin.mu.Lock()
	paths, issued, refreshed, apiAuth := strings.Join(f.paths, "\n"), append([]string(nil), f.issued...), append([]string(nil), f.refreshed...), append([]string(nil), f.apiAuth...)
	all := append([]string(nil), f.access...)
	f.fakeLogin.mu.Unlock()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("exit %d\nstderr:\n%s\nCLI out:\n%s\nCLI err:\n%s\nrequests:\n%s\naudit:\n%s",
				s.code, clip(s.stderr), clip(s.file("cli.out")), clip(s.file("cli.err")), paths, clip(s.auditRaw))
		}
	})
	if !strings.Contains(s.file("cli.out"), "brokered login works") {
		t.Fatal("Claude Code did not print the fake's answer")
	}
	if len(refreshed) != 1 || refreshed[0] != refresh {
		t.Fatalf("the token endpoint got %d refreshes, not one with the real refresh token", len(refreshed))
	}
	if len(all) != 2 || len(apiAuth) == 0 {
		t.Fatalf("%d access tokens issued, %d API calls", len(all), len(apiAuth))
	}
	for _, a := range apiAuth {
		if a != "Bearer "+all[1] {
			t.Fatal("the Messages API got something other than the refreshed real token")
		}
	}
	secrets := append([]string{access, refresh}, issued...)
	s.assertNoSecret(t, secrets...)
	// Whatever the CLI wrote under HOME (through the links of the session
	// copy) holds no real token; only the user's store does.
	filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == store {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, sec := range secrets {
			if strings.Contains(string(data), sec) {
				t.Errorf("%s holds a real token", strings.TrimPrefix(p, home))
			}
		}
		return nil
	})
	var after map[string]map[string]any
	if err := json.Unmarshal([]byte(readFileOr(store, "")), &after); err != nil {
		t.Fatal(err)
	}
	if after["claudeAiOauth"]["accessToken"] != all[1] || after["claudeAiOauth"]["refreshToken"] != f.refresh {
		t.Fatal("the user's store does not hold the refreshed real tokens")
	}
	if exp, _ := after["claudeAiOauth"]["expiresAt"].(float64); int64(exp) < time.Now().UnixMilli() {
		t.Error("the user's store kept the expired expiresAt")
	}
}

// TestBrokeredLoginCodex: the real codex, logged in with ChatGPT, whose
// access token has expired, runs `codex exec` under logins: [codex] and
// --strict. It refreshes at start through the broker (the endpoint on
// fakeLogin), then talks to the ChatGPT backend (agentFake) with the new
// token and prints the answer. Only real tokens reach the two; no real
// token is in codex's environment, output or any file under HOME but the
// user's own store, which holds the refreshed tokens afterwards.
func TestBrokeredLoginCodex(t *testing.T) {
	dir := agentCLIDir(t)
	claims := map[string]any{"email": "user@example.test",
		"https://api.openai.com/auth": map[string]any{"chatgpt_plan_type": "pro", "chatgpt_account_id": "acc-1", "chatgpt_user_id": "user-1"}}
	jwtWith := func(exp time.Time) string {
		c := map[string]any{"exp": exp.Unix(), "iat": time.Now().Unix()}
		for k, v := range claims {
			c[k] = v
		}
		return loginJWT(t, c)
	}
	login := &fakeLogin{tokenHost: "auth.openai.com", tokenPath: "/oauth/token", apiHost: "auth.openai.com",
		newAccess:  func() string { return jwtWith(time.Now().Add(time.Hour)) },
		newRefresh: func() string { return randomToken(t, "rt_", b64url, 60) },
		idToken:    func() string { return jwtWith(time.Now().Add(time.Hour)) }}
	access, refresh, id := jwtWith(time.Now().Add(-time.Hour)), login.newRefresh(), jwtWith(time.Now().Add(-time.Hour))
	login.access, login.refresh = []string{access}, refresh
	login.start(t, login)
	api := newAgentFake(t, "BROKERED")

	home := t.TempDir()
	store := filepath.Join(home, ".codex", "auth.json")
	os.MkdirAll(filepath.Dir(store), 0o700)
	auth, _ := json.MarshalIndent(map[string]any{"auth_mode": "chatgpt", "OPENAI_API_KEY": nil,
		"tokens":       map[string]any{"id_token": id, "access_token": access, "refresh_token": refresh, "account_id": "acc-1"},
		"last_refresh": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "", "  ")
	if err := os.WriteFile(store, auth, 0o600); err != nil {
		t.Fatal(err)
	}
	// A provider of its own for the ChatGPT backend: the built-in one first
	// asks the backend where the workspace lives (workspace routing
	// discovery), which the fake does not implement.
	os.WriteFile(filepath.Join(home, ".codex", "config.toml"), []byte(`check_for_update_on_startup = false
cli_auth_credentials_store = "file"
model_provider = "chatgpt-sse"

[model_providers.chatgpt-sse]
name = "ChatGPT backend over SSE"
base_url = "https://chatgpt.com/backend-api/codex"
wire_api = "responses"
requires_openai_auth = true
supports_websockets = false

[analytics]
enabled = false

[feedback]
enabled = false

[features]
in_app_updates = false
plugins = false
remote_plugin = false
apps = false
`), 0o600)
	bin := filepath.Join(dir, "node_modules", ".bin", "codex")
	s := runSession(t, sessionOpts{
		config:  "version: 1\nlogins: [codex]\n",
		env:     map[string]string{"HOME": home},
		flags:   []string{"--upstream-ca", login.caPEM, "--upstream-ca", api.CAPath, "--strict"},
		connect: []string{connectTo(login.tokenHost, 443, login.port), connectTo("chatgpt.com", 443, api.Port)},
		script: fmt.Sprintf(`cd "$HOME"
timeout 60 %s exec --skip-git-repo-check --json --color never --ephemeral 'Say hi.' < /dev/null > "$OUT/cli.out" 2> "$OUT/cli.err"
`, shellQuote(bin)),
	})
	login.mu.Lock()
	issued, refreshed, all := append([]string(nil), login.issued...), append([]string(nil), login.refreshed...), append([]string(nil), login.access...)
	login.mu.Unlock()
	var reqs []string
	var auths []string
	for _, r := range api.requests() {
		reqs = append(reqs, r.String())
		if r.Known {
			auths = append(auths, r.Header.Get("Authorization"))
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("exit %d\nstderr:\n%s\nCLI out:\n%s\nCLI err:\n%s\nAPI requests:\n%s\naudit:\n%s",
				s.code, clip(s.stderr), clip(s.file("cli.out")), clip(s.file("cli.err")), strings.Join(reqs, "\n"), clip(s.auditRaw))
		}
	})
	if !strings.Contains(s.file("cli.out"), "AGENTVAULT-FAKE-ANSWER-BROKERED") {
		t.Fatal("codex did not print the fake's answer")
	}
	if len(refreshed) != 1 || refreshed[0] != refresh || len(all) != 2 {
		t.Fatalf("the token endpoint got %d refreshes, not one with the real refresh token", len(refreshed))
	}
	if len(auths) == 0 {
		t.Fatal("the ChatGPT backend got no model request")
	}
	for _, a := range auths {
		if a != "Bearer "+all[1] {
			t.Fatal("the ChatGPT backend got something other than the refreshed real token")
		}
	}
	secrets := append([]string{access, refresh, id}, issued...)
	s.assertNoSecret(t, secrets...)
	filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == store {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, sec := range secrets {
			if strings.Contains(string(data), sec) {
				t.Errorf("%s holds a real token", strings.TrimPrefix(p, home))
			}
		}
		return nil
	})
	var after map[string]any
	if err := json.Unmarshal([]byte(readFileOr(store, "")), &after); err != nil {
		t.Fatal(err)
	}
	tokens, _ := after["tokens"].(map[string]any)
	if tokens["access_token"] != all[1] || tokens["refresh_token"] != login.refresh || tokens["id_token"] != issued[2] {
		t.Fatal("the user's store does not hold the refreshed real tokens")
	}
}
