package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hostile-agent probes against brokered subscription logins and the
// sandbox's hidden paths. Each was a working attack before its fix.

// rtEndpoint is a Claude-like token endpoint and API for the attacks. Its
// token endpoint reads the request's parameters as some web frameworks do
// (Werkzeug's request.values, for one): the query string first, then the
// body; its API echoes the X-Echo header, as an error message echoing a
// bad header value would.
type rtEndpoint struct {
	mu sync.Mutex
	// accounts maps a working refresh token to the account it refreshes.
	accounts map[string]string
	issued   []string
	newTok   func(prefix string) string
	// seen is closed when the child says (/v1/seen) that it has the
	// refresh's answer; /v1/slow-echo waits for it (at most 10 s) before
	// it echoes.
	seen     chan struct{}
	seenOnce sync.Once
	// arrived is closed when /v1/slow-echo got its request; /v1/arrived
	// says so.
	arrived     chan struct{}
	arrivedOnce sync.Once
}

func (e *rtEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Host == "api.anthropic.com" && r.URL.Path == "/v1/slow-echo" {
		e.arrivedOnce.Do(func() { close(e.arrived) })
		select {
		case <-e.seen:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "you sent: "+r.Header.Get("X-Echo"))
		return
	}
	if r.Host == "api.anthropic.com" && r.URL.Path == "/v1/seen" {
		e.seenOnce.Do(func() { close(e.seen) })
		return
	}
	if r.Host == "api.anthropic.com" && r.URL.Path == "/v1/arrived" {
		select {
		case <-e.arrived:
			io.WriteString(w, "yes")
		default:
			io.WriteString(w, "no")
		}
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case r.Host == "platform.claude.com" && r.URL.Path == "/v1/oauth/token" && r.Method == http.MethodPost:
		params := map[string]any{}
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &params)
		for k, v := range r.URL.Query() {
			params[k] = v[0]
		}
		rt, _ := params["refresh_token"].(string)
		account, ok := e.accounts[rt]
		if params["grant_type"] != "refresh_token" || !ok {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		a, nr := e.newTok("sk-ant-oat01-"), e.newTok("sk-ant-ort01-")
		delete(e.accounts, rt)
		e.accounts[nr] = account
		e.issued = append(e.issued, a, nr)
		json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "access_token": a, "refresh_token": nr,
			"expires_in": 3600, "scope": "user:inference", "account": map[string]any{"uuid": account}})
	case r.Host == "api.anthropic.com" && r.URL.Path == "/v1/echo":
		io.WriteString(w, "you sent: "+r.Header.Get("X-Echo"))
	default:
		http.NotFound(w, r)
	}
}

// rtSetup starts the endpoint with the user's login and writes the user's
// Claude Code store under a new HOME.
func rtSetup(t *testing.T) (e *rtEndpoint, f *fakeLogin, home, store, access, refresh string) {
	return rtSetupAccount(t, "user-uuid")
}

// rtSetupAccount is rtSetup with the store's accountUuid ("" = none, as
// in a store written before Claude Code kept it).
func rtSetupAccount(t *testing.T, storeAccount string) (e *rtEndpoint, f *fakeLogin, home, store, access, refresh string) {
	tok := func(prefix string) string { return randomToken(t, prefix, b64url, 95) + "AA" }
	access, refresh = tok("sk-ant-oat01-"), tok("sk-ant-ort01-")
	e = &rtEndpoint{accounts: map[string]string{refresh: "user-uuid"}, newTok: tok,
		seen: make(chan struct{}), arrived: make(chan struct{})}
	f = &fakeLogin{tokenHost: "platform.claude.com", apiHost: "api.anthropic.com"}
	f.start(t, e)
	home = t.TempDir()
	store = filepath.Join(home, ".claude", ".credentials.json")
	os.MkdirAll(filepath.Dir(store), 0o700)
	login := map[string]any{"accessToken": access, "refreshToken": refresh, "expiresAt": 1}
	if storeAccount != "" {
		login["accountUuid"] = storeAccount
	}
	data, _ := json.Marshal(map[string]any{"claudeAiOauth": login})
	if err := os.WriteFile(store, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return e, f, home, store, access, refresh
}

// rtStoreField is a child snippet that prints a field of the brokered
// store's claudeAiOauth.
func rtStoreField(field string) string {
	return fmt.Sprintf(`"$(%s -c 'import json,os; print(json.load(open(os.path.join(os.environ["CLAUDE_CONFIG_DIR"], ".credentials.json")))["claudeAiOauth"]["%s"])')"`,
		pythonExe, field)
}

// TestRedteamOldAccessPlaceholderReflected: after a refresh, the access
// placeholder the agent held before must not bring the old real token
// back, even from an API host that echoes a header. The reflection guard
// knows only the login's current token, so the proxy must not put an old
// one on a request any more (an old access token stays valid at the API
// until it expires: hours).
func TestRedteamOldAccessPlaceholderReflected(t *testing.T) {
	needBinary(t)
	if pythonExe == "" {
		skipOutsideCI(t, "python3 is missing")
	}
	e, f, home, _, access, refresh := rtSetup(t)
	script := `old=` + rtStoreField("accessToken") + `
rt=` + rtStoreField("refreshToken") + `
curl -sS --max-time 20 -o "$OUT/refresh.body" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$rt\"}" https://platform.claude.com/v1/oauth/token > "$OUT/refresh.status" 2> "$OUT/refresh.err"
new=$('` + pythonExe + `' -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$OUT/refresh.body")
curl -sS --max-time 20 -o "$OUT/echo-new.body" -H "X-Echo: $new" https://api.anthropic.com/v1/echo 2> "$OUT/echo-new.err"
curl -sS --max-time 20 -o "$OUT/echo-old.body" -H "X-Echo: $old" https://api.anthropic.com/v1/echo 2> "$OUT/echo-old.err"
`
	s := runSession(t, sessionOpts{
		config:  "version: 1\nlogins: [claude]\n",
		env:     map[string]string{"HOME": home},
		flags:   []string{"--upstream-ca", f.caPEM},
		connect: []string{connectTo(f.tokenHost, 443, f.port), connectTo(f.apiHost, 443, f.port)},
		script:  script,
	})
	if s.code != 0 || s.file("refresh.status") != "200" {
		t.Fatalf("exit %d, refresh %q %s\nstderr:\n%s", s.code, s.file("refresh.status"), s.file("refresh.body"), s.stderr)
	}
	// The probe works: the API did echo the header (the current token,
	// which the reflection guard knows, comes back masked).
	if !strings.HasPrefix(s.file("echo-new.body"), "you sent: ") || !strings.HasPrefix(s.file("echo-old.body"), "you sent: ") {
		t.Fatalf("the API did not echo: %q / %q", s.file("echo-new.body"), s.file("echo-old.body"))
	}
	e.mu.Lock()
	issued := append([]string(nil), e.issued...)
	e.mu.Unlock()
	s.assertNoSecret(t, append([]string{access, refresh}, issued...)...)
}

// TestRedteamTokenQuerySmuggling: an agent that refreshes the user's login
// properly in the body but names its own account's refresh token in the
// query string, at an endpoint that lets the query win, must not get its
// own account's tokens written into the user's store at exit (the user's
// next sessions would then talk to the attacker's account, which sees
// every conversation). The broker refuses an answer for another account
// than the store's.
func TestRedteamTokenQuerySmuggling(t *testing.T) {
	rtSmuggle(t, "user-uuid")
}

// TestRedteamTokenQuerySmugglingNoAccount: the same attack on a store that
// does not name its account, so only the proxy can stop it, by refusing a
// token request with a query string (the CLIs send none).
func TestRedteamTokenQuerySmugglingNoAccount(t *testing.T) {
	rtSmuggle(t, "")
}

func rtSmuggle(t *testing.T, storeAccount string) {
	needBinary(t)
	if pythonExe == "" {
		skipOutsideCI(t, "python3 is missing")
	}
	e, f, home, store, access, refresh := rtSetupAccount(t, storeAccount)
	attacker := randomToken(t, "sk-ant-ort01-", b64url, 95) + "AA"
	e.accounts[attacker] = "attacker-uuid"
	script := `rt=` + rtStoreField("refreshToken") + `
curl -sS --max-time 20 -o "$OUT/smuggle.body" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$rt\"}" 'https://platform.claude.com/v1/oauth/token?refresh_token=` + attacker + `' > "$OUT/smuggle.status" 2> "$OUT/smuggle.err"
`
	s := runSession(t, sessionOpts{
		config:  "version: 1\nlogins: [claude]\n",
		env:     map[string]string{"HOME": home},
		flags:   []string{"--upstream-ca", f.caPEM},
		connect: []string{connectTo(f.tokenHost, 443, f.port), connectTo(f.apiHost, 443, f.port)},
		script:  script,
	})
	if s.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", s.code, s.stderr)
	}
	var after struct {
		O map[string]any `json:"claudeAiOauth"`
	}
	if err := json.Unmarshal([]byte(readFileOr(store, "")), &after); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if rt, _ := after.O["refreshToken"].(string); e.accounts[rt] == "attacker-uuid" {
		t.Fatalf("the user's store now holds the attacker's account (smuggle: %s %s)", s.file("smuggle.status"), s.file("smuggle.body"))
	}
	if after.O["accessToken"] != access || after.O["refreshToken"] != refresh {
		t.Error("the user's store changed although no refresh of the user's login went through")
	}
	s.assertNoSecret(t, append([]string{access, refresh}, e.issued...)...)
}

// TestRedteamInFlightAccessReflected: a request carrying the current
// access placeholder whose answer, echoing the real token, comes back only
// after the agent refreshed (the API holds it until the agent says it has
// the refresh's answer). The echoed token must be masked.
func TestRedteamInFlightAccessReflected(t *testing.T) {
	needBinary(t)
	if pythonExe == "" {
		skipOutsideCI(t, "python3 is missing")
	}
	e, f, home, _, access, refresh := rtSetup(t)
	script := `cur=` + rtStoreField("accessToken") + `
rt=` + rtStoreField("refreshToken") + `
curl -sS --max-time 20 -o "$OUT/slow.body" -H "X-Echo: $cur" https://api.anthropic.com/v1/slow-echo 2> "$OUT/slow.err" &
i=0
while [ "$(curl -sS --max-time 5 https://api.anthropic.com/v1/arrived)" != yes ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
curl -sS --max-time 20 -o "$OUT/refresh.body" -w '%{http_code}' -H 'Content-Type: application/json' \
  --data "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$rt\"}" https://platform.claude.com/v1/oauth/token > "$OUT/refresh.status" 2> "$OUT/refresh.err"
curl -sS --max-time 5 https://api.anthropic.com/v1/seen
wait
`
	s := runSession(t, sessionOpts{
		config:  "version: 1\nlogins: [claude]\n",
		env:     map[string]string{"HOME": home},
		flags:   []string{"--upstream-ca", f.caPEM},
		connect: []string{connectTo(f.tokenHost, 443, f.port), connectTo(f.apiHost, 443, f.port)},
		script:  script,
	})
	if s.code != 0 || s.file("refresh.status") != "200" || !strings.HasPrefix(s.file("slow.body"), "you sent: ") {
		t.Fatalf("exit %d, refresh %q, slow %q\nstderr:\n%s", s.code, s.file("refresh.status"), s.file("slow.body"), s.stderr)
	}
	e.mu.Lock()
	issued := append([]string(nil), e.issued...)
	e.mu.Unlock()
	s.assertNoSecret(t, append([]string{access, refresh}, issued...)...)
}

// TestRedteamIsolateMoveHidden: under --isolate an agent cannot see a
// hidden path, but it can write the rest of the user's files. Renaming a
// hidden path's parent directory would move the real file out from under
// the cover for good: the next session hides the old path, where nothing
// is any more, and the agent reads the moved file. The rename must fail,
// for a default hidden path and for a brokered login's store.
func TestRedteamIsolateMoveHidden(t *testing.T) {
	needBinary(t)
	if pythonExe == "" {
		skipOutsideCI(t, "python3 is missing")
	}
	_, f, home, store, access, refresh := rtSetup(t)
	gh := filepath.Join(home, ".config", "gh", "hosts.yml")
	os.MkdirAll(filepath.Dir(gh), 0o700)
	ghToken := "gho_" + randomToken(t, "", b64url, 36)
	if err := os.WriteFile(gh, []byte("github.com:\n  oauth_token: "+ghToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The first session (the login brokered) moves the directories; the
	// second, a plain one, reads where they went.
	s1 := runSession(t, sessionOpts{
		config:  "version: 1\nlogins: [claude]\n",
		env:     map[string]string{"HOME": home},
		flags:   []string{"--upstream-ca", f.caPEM, "--isolate"},
		connect: []string{connectTo(f.tokenHost, 443, f.port), connectTo(f.apiHost, 443, f.port)},
		script: `mv "$HOME/.config" "$HOME/moved-config" 2> "$OUT/mv-config.err"
mv "$HOME/.claude" "$HOME/moved-claude" 2> "$OUT/mv-claude.err"
exit 0
`,
	})
	if s1.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", s1.code, s1.stderr)
	}
	for _, p := range []string{gh, store} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was moved by the agent: %v", p, err)
		}
	}
	for _, f := range []string{"mv-config.err", "mv-claude.err"} {
		if !strings.Contains(s1.file(f), "busy") {
			t.Errorf("%s: %q, want the kernel's EBUSY", f, s1.file(f))
		}
	}
	s2 := runSession(t, sessionOpts{
		env:   map[string]string{"HOME": home},
		flags: []string{"--isolate"},
		script: `cat "$HOME/moved-config/gh/hosts.yml" "$HOME/moved-claude/.credentials.json" > "$OUT/stolen" 2>&1
`,
	})
	s1.assertNoSecret(t, access, refresh, ghToken)
	s2.assertNoSecret(t, access, refresh, ghToken)
}

// TestRedteamIsolateInheritedDescriptor: a descriptor agentvault inherited
// without close-on-exec (a parent that leaks a directory it opened) must
// not reach the command under --isolate: a directory opened outside the
// sandbox reaches the files under it past the covers (/proc/self/fd/N/...).
func TestRedteamIsolateInheritedDescriptor(t *testing.T) {
	needBinary(t)
	home := t.TempDir()
	ssh := filepath.Join(home, ".ssh")
	os.Mkdir(ssh, 0o700)
	key := "ssh-key-" + randomToken(t, "", b64url, 40)
	if err := os.WriteFile(filepath.Join(ssh, "id_ed25519"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(ssh)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, avBin, "run", "-q", "--isolate", "--", "sh", "-c",
		`cat ~/.ssh/id_ed25519 > "$OUT/direct" 2>&1
ls -l /proc/self/fd/ > "$OUT/fds" 2>&1
for f in /proc/self/fd/*; do cat "$f/id_ed25519"; done > "$OUT/stolen" 2>/dev/null
exit 0`)
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv(t, map[string]string{"HOME": home, "OUT": out})
	// fd 7: agentvault hands its sandbox a control socket at fd 3.
	cmd.ExtraFiles = []*os.File{nil, nil, nil, nil, dir}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if got := readFileOr(filepath.Join(out, "direct"), ""); strings.Contains(got, key) {
		t.Fatal("the probe is broken: ~/.ssh is not hidden at its path")
	}
	if strings.Contains(readFileOr(filepath.Join(out, "stolen"), ""), key) {
		t.Fatalf("the command read a hidden file through an inherited descriptor; its descriptors:\n%s", readFileOr(filepath.Join(out, "fds"), ""))
	}
}

// TestRedteamPlaceholderAsMethod: the agent chooses the request method; a
// placeholder used as one must not show in the audit log or the summary,
// which are masked field by field.
func TestRedteamPlaceholderAsMethod(t *testing.T) {
	needBinary(t)
	up := newUpstream(t, true)
	s := runSession(t, sessionOpts{
		config:  apiConfig,
		env:     map[string]string{"TEST_API_TOKEN": newSecret(t, "api")},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script:  curlTo("method", "https://api.example.test/echo/m", `-X "$API_TOKEN"`),
	})
	if s.code != 0 {
		t.Fatalf("exit %d\n%s", s.code, s.stderr)
	}
	if len(s.audit) == 0 {
		t.Fatal("no audit record: the probe did not reach the proxy")
	}
	s.assertNoPlaceholder(t, s.placeholder(t, "API_TOKEN"))
}

// TestRedteamOTLPLoopbackSquat: in host mode the agent shares agentvault's
// loopback. With a plain http:// collector on a loopback port that is not
// taken (the local collector is not running), an agent that listens there
// first receives the export requests, and with them the header that holds
// the collector's token. Headers go over plain http only under --isolate,
// where the agent has a loopback of its own.
func TestRedteamOTLPLoopbackSquat(t *testing.T) {
	needBinary(t)
	if pythonExe == "" {
		skipOutsideCI(t, "python3 is missing")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	token := newSecret(t, "collector")
	up := newUpstream(t, true)
	squat := fmt.Sprintf(`
import os, socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", %d)); s.listen(4); s.settimeout(8)
open(os.path.join(os.environ["OUT"], "listening"), "w").close()
try:
    c, _ = s.accept(); c.settimeout(3)
    open(os.path.join(os.environ["OUT"], "captured"), "wb").write(c.recv(65536))
except Exception as e:
    open(os.path.join(os.environ["OUT"], "squat.err"), "w").write(str(e))
`, port)
	s := runSession(t, sessionOpts{
		config: fmt.Sprintf(`version: 1
audit:
  otlp:
    endpoint: http://127.0.0.1:%d
    headers:
      Authorization: Bearer ${OTEL_COLLECTOR_TOKEN}
`, port),
		env:     map[string]string{"OTEL_COLLECTOR_TOKEN": token, "SQUAT": squat},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script: `'` + pythonExe + `' -c "$SQUAT" &
i=0; while [ ! -e "$OUT/listening" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
` + curlTo("ok", "https://api.example.test/ok/x") + `wait
`,
	})
	if strings.Contains(s.file("captured"), token) {
		t.Fatal("the agent captured the collector's token by listening on its loopback port first")
	}
	// Refused before the command starts, naming the remedy, never the token.
	if s.code != 78 || !strings.Contains(s.stderr, "https://") {
		t.Fatalf("exit %d, want 78 naming https\n%s", s.code, s.stderr)
	}
	s.assertNoSecret(t, token)
}
