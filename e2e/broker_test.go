package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLogin is a provider's OAuth token endpoint and API on one local TLS
// server (its own CA names the real hosts; --connect-to maps them). It
// rotates both tokens on the first refresh and answers every later one
// with a 200 that holds no token: a malformed answer agentvault must
// refuse.
type fakeLogin struct {
	tokenHost, tokenPath, apiHost string
	newAccess, newRefresh         func() string
	idToken                       func() string // "" = the provider sends no id_token

	mu        sync.Mutex
	access    []string // every access token issued, the store's first
	refresh   string   // the refresh token that works now
	refreshed []string // refresh tokens the endpoint received
	apiAuth   []string // Authorization headers the API received
	issued    []string // every real value the endpoint sent
	port      int
	caPEM     string
}

// startClaudeLogin starts a fake of Claude's token endpoint and API and
// returns it with the login's first access and refresh tokens (the user's
// store holds them).
func startClaudeLogin(t *testing.T) (f *fakeLogin, access, refresh string) {
	t.Helper()
	tok := func(prefix string) func() string {
		return func() string { return randomToken(t, prefix, b64url, 95) + "AA" }
	}
	f = &fakeLogin{tokenHost: "platform.claude.com", tokenPath: "/v1/oauth/token", apiHost: "api.anthropic.com",
		newAccess: tok("sk-ant-oat01-"), newRefresh: tok("sk-ant-ort01-")}
	access, refresh = f.newAccess(), f.newRefresh()
	f.access, f.refresh = []string{access}, refresh
	f.start(t, f)
	return f, access, refresh
}

// start serves h (f, or a handler wrapping it) on 127.0.0.1.
func (f *fakeLogin) start(t *testing.T, h http.Handler) {
	t.Helper()
	f.caPEM = filepath.Join(t.TempDir(), "login-ca.pem")
	ca, err := newTestAuthority(f.caPEM, f.tokenHost, f.apiHost)
	if err != nil {
		t.Fatal(err)
	}
	f.port = serveTLS(t, h, ca.serverTLS())
}

func (f *fakeLogin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Host == f.tokenHost && r.URL.Path == f.tokenPath && r.Method == http.MethodPost {
		var req map[string]any
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil || req["grant_type"] != "refresh_token" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		rt, _ := req["refresh_token"].(string)
		f.refreshed = append(f.refreshed, rt)
		if rt != f.refresh {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		if len(f.access) > 1 {
			io.WriteString(w, `{"token_type":"Bearer","note":"no tokens today"}`)
			return
		}
		a, rf := f.newAccess(), f.newRefresh()
		f.access, f.refresh = append(f.access, a), rf
		answer := map[string]any{"token_type": "Bearer", "access_token": a, "refresh_token": rf, "expires_in": 3600, "scope": "user:inference"}
		f.issued = append(f.issued, a, rf)
		if f.idToken != nil {
			id := f.idToken()
			answer["id_token"] = id
			f.issued = append(f.issued, id)
		}
		json.NewEncoder(w).Encode(answer)
		return
	}
	if r.Host == f.apiHost {
		auth := r.Header.Get("Authorization")
		f.apiAuth = append(f.apiAuth, auth)
		if slices.Contains(f.access, strings.TrimPrefix(auth, "Bearer ")) {
			io.WriteString(w, "ok")
			return
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	http.NotFound(w, r)
}

// loginJWT is an RS256-looking JWT with the given claims.
func loginJWT(t *testing.T, claims map[string]any) string {
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(c) + "." + randomToken(t, "", b64url, 342)
}

// TestBrokeredLogins: with logins: [agent], a client that behaves as Claude
// Code or codex does (it reads the store from CLAUDE_CONFIG_DIR/CODEX_HOME)
// calls the API, refreshes, calls again with the new token and refreshes
// once more. The API and the token endpoint get only real tokens; the
// child never sees one (environment, files, answers), nor do agentvault's
// output and audit; the malformed second answer is refused; after the
// session the user's own store holds the refreshed real tokens and kept
// its other fields.
func TestBrokeredLogins(t *testing.T) {
	needBinary(t)
	if pythonExe == "" {
		skipOutsideCI(t, "python3 is missing")
	}
	claudeTok := func(prefix string) func() string {
		return func() string { return randomToken(t, prefix, b64url, 95) + "AA" }
	}
	codexAccess := func() string {
		return loginJWT(t, map[string]any{"exp": time.Now().Add(time.Hour).Unix(),
			"https://api.openai.com/auth": map[string]any{"chatgpt_account_id": "acc-1"}})
	}
	codexID := func() string {
		return loginJWT(t, map[string]any{"email": "user@example.test",
			"https://api.openai.com/auth": map[string]any{"chatgpt_plan_type": "pro", "chatgpt_account_id": "acc-1"}})
	}
	claudeFake := func() *fakeLogin {
		return &fakeLogin{tokenHost: "platform.claude.com", tokenPath: "/v1/oauth/token", apiHost: "api.anthropic.com",
			newAccess: claudeTok("sk-ant-oat01-"), newRefresh: claudeTok("sk-ant-ort01-")}
	}
	claudeStore := func(a, r string) map[string]any {
		return map[string]any{"claudeAiOauth": map[string]any{"accessToken": a, "refreshToken": r,
			"expiresAt": 1767225600000, "scopes": []string{"user:inference"}, "subscriptionType": "max"},
			"userField": "kept"}
	}
	claudePaths := [2][]string{{"claudeAiOauth", "accessToken"}, {"claudeAiOauth", "refreshToken"}}
	cases := []struct {
		name, agent, dir, file string
		// isolate: under --isolate the child also reads the real store's
		// path, which must show it nothing
		isolate bool
		fake    func() *fakeLogin
		store   func(access, refresh string) map[string]any
		paths   [2][]string // access, refresh in the store
		dirVar  string
	}{
		{name: "claude", agent: "claude", dir: ".claude", file: ".credentials.json", dirVar: "CLAUDE_CONFIG_DIR",
			fake: claudeFake, store: claudeStore, paths: claudePaths},
		{name: "claude under --isolate", agent: "claude", dir: ".claude", file: ".credentials.json", dirVar: "CLAUDE_CONFIG_DIR",
			isolate: true, fake: claudeFake, store: claudeStore, paths: claudePaths},
		{
			name: "codex", agent: "codex", dir: ".codex", file: "auth.json", dirVar: "CODEX_HOME",
			fake: func() *fakeLogin {
				return &fakeLogin{tokenHost: "auth.openai.com", tokenPath: "/oauth/token", apiHost: "chatgpt.com",
					newAccess: codexAccess, newRefresh: func() string { return randomToken(t, "rt_", b64url, 60) }, idToken: codexID}
			},
			store: func(a, r string) map[string]any {
				return map[string]any{"OPENAI_API_KEY": nil, "tokens": map[string]any{"access_token": a, "refresh_token": r,
					"id_token": codexID(), "account_id": "acc-1"}, "last_refresh": "2026-11-30T10:00:00Z", "userField": "kept"}
			},
			paths: [2][]string{{"tokens", "access_token"}, {"tokens", "refresh_token"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake()
			access, refresh := f.newAccess(), f.newRefresh()
			f.access, f.refresh = []string{access}, refresh
			f.start(t, f)

			home := t.TempDir()
			dir := filepath.Join(home, tc.dir)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			store := filepath.Join(dir, tc.file)
			initial := tc.store(access, refresh)
			data, _ := json.MarshalIndent(initial, "", "  ")
			if err := os.WriteFile(store, data, 0o600); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "settings.json"), []byte(`{"theme":"dark"}`), 0o600)
			secrets := []string{access, refresh}
			if tc.agent == "codex" {
				secrets = append(secrets, initial["tokens"].(map[string]any)["id_token"].(string))
			}

			flags := []string{"--upstream-ca", f.caPEM}
			script := fmt.Sprintf(`'%s' '%s' %s 'https://%s%s' 'https://%s/v1/ping' "$OUT" 2> "$OUT/client.err"
cat "$%s/settings.json" > "$OUT/settings.seen"
`, pythonExe, testdataPath("py", "login_client.py"), tc.agent, f.tokenHost, f.tokenPath, f.apiHost, tc.dirVar)
			if tc.isolate {
				flags = append(flags, "--isolate")
				// Read where the real store is: assertNoSecret below
				// checks what came out.
				script += fmt.Sprintf("cat '%s' > \"$OUT/real-store\" 2>&1\n", store)
			}
			s := runSession(t, sessionOpts{
				config:  "version: 1\nlogins: [" + tc.agent + "]\n",
				env:     map[string]string{"HOME": home},
				flags:   flags,
				connect: []string{connectTo(f.tokenHost, 443, f.port), connectTo(f.apiHost, 443, f.port)},
				script:  script,
			})
			if s.code != 0 {
				t.Fatalf("exit %d\nstderr:\n%s\nclient:\n%s", s.code, s.stderr, s.file("client.err"))
			}
			f.mu.Lock()
			issued, apiAuth, refreshed, all := slices.Clone(f.issued), slices.Clone(f.apiAuth), slices.Clone(f.refreshed), slices.Clone(f.access)
			f.mu.Unlock()
			secrets = append(secrets, issued...)

			// The API got the real token before and after the refresh.
			for _, step := range []string{"api1", "api2"} {
				if st := s.file(step + ".status"); st != "200" {
					t.Fatalf("%s: status %q (%s); stderr:\n%s", step, st, s.file(step+".body"), s.stderr)
				}
			}
			if len(all) != 2 || !slices.Equal(apiAuth, []string{"Bearer " + all[0], "Bearer " + all[1]}) {
				t.Fatalf("the API saw %d requests, not the old then the new real token", len(apiAuth))
			}
			// The endpoint got the real refresh token, then the rotated one.
			if len(refreshed) != 2 || refreshed[0] != refresh || refreshed[1] != f.refresh {
				t.Fatalf("the token endpoint got %d refreshes, not the real refresh tokens in turn", len(refreshed))
			}
			if st := s.file("refresh1.status"); st != "200" {
				t.Fatalf("refresh1: %s %s", st, s.file("refresh1.body"))
			}
			// The malformed answer is refused, not passed on.
			if st := s.file("refresh2.status"); st != "502" {
				t.Fatalf("refresh2: status %q, want 502; body %s", st, s.file("refresh2.body"))
			}
			if strings.Contains(s.file("refresh2.body"), "no tokens today") {
				t.Fatal("the malformed answer reached the child")
			}
			if recs := auditFind(s.audit, map[string]any{"host": f.tokenHost, "status": 502}); len(recs) != 1 {
				t.Fatalf("audit has %d 502 records for the token endpoint:\n%s", len(recs), s.auditRaw)
			}
			// The child's view: its variable points into the session.
			if d := s.childEnv[tc.dirVar]; d == "" || strings.HasPrefix(d, home) {
				t.Fatalf("child %s = %q", tc.dirVar, d)
			}
			if s.file("settings.seen") != `{"theme":"dark"}` {
				t.Error("the session copy of the directory lost the user's settings")
			}
			s.assertNoSecret(t, secrets...)

			// The user's own store holds the refreshed real tokens.
			var after map[string]any
			if err := json.Unmarshal([]byte(readFileOr(store, "")), &after); err != nil {
				t.Fatal(err)
			}
			get := func(p []string) any { return after[p[0]].(map[string]any)[p[1]] }
			if get(tc.paths[0]) != all[1] || get(tc.paths[1]) != f.refresh {
				t.Fatal("the user's store does not hold the refreshed real tokens")
			}
			if after["userField"] != "kept" {
				t.Error("write-back lost a field")
			}
			if st, _ := os.Lstat(store); st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
				t.Errorf("store mode %v", st.Mode())
			}
			if !strings.Contains(s.stderr, "written back") {
				t.Errorf("the summary does not say the tokens were written back:\n%s", s.stderr)
			}
		})
	}
}

// TestBrokeredLoginHostile: an agent that refreshes its own account's
// login through the broker, or logs in at the token endpoint, is refused
// before the endpoint sees anything; one that writes its own account's
// tokens into the store it was given after a real refresh does not get
// them into the user's store: the write-back takes the broker's tokens.
func TestBrokeredLoginHostile(t *testing.T) {
	needBinary(t)
	if pythonExe == "" {
		skipOutsideCI(t, "python3 is missing")
	}
	f, access, refresh := startClaudeLogin(t)
	attackerAccess, attackerRefresh := f.newAccess(), f.newRefresh()

	home := t.TempDir()
	store := filepath.Join(home, ".claude", ".credentials.json")
	os.MkdirAll(filepath.Dir(store), 0o700)
	data, _ := json.Marshal(map[string]any{"claudeAiOauth": map[string]any{"accessToken": access, "refreshToken": refresh, "expiresAt": 1}})
	if err := os.WriteFile(store, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := runSession(t, sessionOpts{
		config:  "version: 1\nlogins: [claude]\n",
		env:     map[string]string{"HOME": home},
		flags:   []string{"--upstream-ca", f.caPEM},
		connect: []string{connectTo(f.tokenHost, 443, f.port), connectTo(f.apiHost, 443, f.port)},
		script: fmt.Sprintf(`'%s' '%s' 'https://%s%s' '%s' '%s' "$OUT" 2> "$OUT/client.err"
`, pythonExe, testdataPath("py", "login_hostile.py"), f.tokenHost, f.tokenPath, attackerRefresh, attackerAccess),
	})
	if s.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s\nclient:\n%s", s.code, s.stderr, s.file("client.err"))
	}
	for step, want := range map[string]string{"foreign": "403", "login": "403", "own": "200"} {
		if st := s.file(step + ".status"); st != want {
			t.Errorf("%s: status %q, want %s (%s)", step, st, want, s.file(step+".body"))
		}
	}
	f.mu.Lock()
	refreshed, issued, newAccess, newRefresh := slices.Clone(f.refreshed), slices.Clone(f.issued), f.access[len(f.access)-1], f.refresh
	f.mu.Unlock()
	if len(refreshed) != 1 || refreshed[0] != refresh {
		t.Fatalf("the token endpoint got %d requests, want only the user's own refresh", len(refreshed))
	}
	if recs := auditFind(s.audit, map[string]any{"host": f.tokenHost, "status": 403}); len(recs) != 2 {
		t.Errorf("audit has %d refusals at the token endpoint, want 2:\n%s", len(recs), s.auditRaw)
	}
	s.assertNoSecret(t, append([]string{access, refresh}, issued...)...)
	var after map[string]map[string]any
	if err := json.Unmarshal([]byte(readFileOr(store, "")), &after); err != nil {
		t.Fatal(err)
	}
	if got := after["claudeAiOauth"]; got["accessToken"] != newAccess || got["refreshToken"] != newRefresh {
		t.Fatal("the user's store does not hold the tokens the broker got")
	}
}
