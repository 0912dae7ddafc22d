package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The real agent CLIs (Claude Code, codex, gemini-cli), installed from npm at
// the versions scripts/agent-clis pins, run headless through the built
// binary in zero-config mode under --strict, against agentFake.

// agentCLIDir is the install scripts/agent-clis made: AGENTVAULT_AGENT_CLIS
// if set, else what `scripts/agent-clis --cached` prints. Missing, it is a
// skip on a developer machine and a failure in CI.
func agentCLIDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("AGENTVAULT_AGENT_CLIS")
	if dir == "" {
		out, err := exec.Command("../scripts/agent-clis", "--cached").Output()
		if err != nil {
			msg := "the agent CLIs are not installed; run scripts/agent-clis"
			if inCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		dir = strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		t.Fatalf("AGENTVAULT_AGENT_CLIS=%s is not an install of scripts/agent-clis: %v", dir, err)
	}
	return dir
}

// agentCLI is one CLI run: how to start it, where its key goes, what it
// reaches.
type agentCLI struct {
	name       string
	bin        string // under node_modules/.bin
	keyVar     string // the variable the real key is passed in
	key        func(t *testing.T) string
	credential string   // the preset agentvault's zero-config mode names it after
	hosts      []string // where the key may go (the preset's hosts); the first gets the model requests
	keyHeader  func(h http.Header) string
	stream     string // agentFake stream kind the answer comes on
	// answer is the reply the CLI printed, from its JSON output lines.
	answer func(out []map[string]any) string
	// logged: the CLI's output shows only the whole reply, so when each
	// piece arrived is read from its own timestamped log on stderr.
	logged bool
	// env and files (relative to HOME) switch off telemetry, update
	// checks and other traffic, and point the CLI's state into HOME.
	env   map[string]string
	files map[string]string
	args  func(prompt string) []string
}

const agentPrompt = "Reply with the answer of the agentvault fake."

func agentCLIs() []agentCLI {
	bearer := func(h http.Header) string { return strings.TrimPrefix(h.Get("Authorization"), "Bearer ") }
	// codex talks to the Responses API over WebSocket wherever its
	// provider supports it (the built-in "openai" does; the feature flag is
	// gone); a provider with supports_websockets = false makes it use SSE.
	codexFiles := func(websockets bool) map[string]string {
		provider := ""
		if !websockets {
			provider = `model_provider = "openai-sse"

[model_providers.openai-sse]
name = "OpenAI over SSE"
base_url = "https://api.openai.com/v1"
env_key = "CODEX_API_KEY"
wire_api = "responses"
supports_websockets = false
`
		}
		return map[string]string{".codex/config.toml": `# agentvault e2e: nothing but the model API.
check_for_update_on_startup = false
` + provider + `
[analytics]
enabled = false

[feedback]
enabled = false

[features]
in_app_updates = false
plugins = false
remote_plugin = false
apps = false
api_key_model_discovery = false
`}
	}
	codexAnswer := func(out []map[string]any) string {
		for _, o := range out {
			if item, _ := o["item"].(map[string]any); o["type"] == "item.completed" && item["type"] == "agent_message" {
				return fmt.Sprint(item["text"])
			}
		}
		return ""
	}
	codexArgs := func(p string) []string {
		return []string{"exec", "--skip-git-repo-check", "--json", "--color", "never", "--ephemeral", p}
	}
	codex := func(name, stream string, ws bool) agentCLI {
		return agentCLI{
			name: name, bin: "codex", keyVar: "CODEX_API_KEY",
			key:        func(t *testing.T) string { return randomToken(t, "sk-proj-", b64url, 156) },
			credential: "codex", hosts: []string{"api.openai.com", "chatgpt.com"}, keyHeader: bearer, stream: stream,
			// Its log of every event received, with the time.
			env:    map[string]string{"CODEX_HOME": "{HOME}/.codex", "RUST_LOG": "codex_api::sse::responses=trace,tungstenite::protocol=trace"},
			files:  codexFiles(ws),
			args:   codexArgs,
			answer: codexAnswer,
			logged: true,
		}
	}
	claude := func(name, keyVar, credential, prefix string, n int, suffix string, keyHeader func(http.Header) string) agentCLI {
		return agentCLI{
			name: name, bin: "claude", keyVar: keyVar,
			key:        func(t *testing.T) string { return randomToken(t, prefix, b64url, n) + suffix },
			credential: credential, hosts: []string{"api.anthropic.com"},
			keyHeader: keyHeader,
			stream:    "anthropic",
			env: map[string]string{
				"CLAUDE_CONFIG_DIR":                        "{HOME}/.claude",
				"DISABLE_TELEMETRY":                        "1",
				"DISABLE_ERROR_REPORTING":                  "1",
				"DISABLE_AUTOUPDATER":                      "1",
				"DISABLE_BUG_COMMAND":                      "1",
				"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
			},
			args: func(p string) []string {
				return []string{"-p", p, "--tools", "", "--output-format", "stream-json", "--include-partial-messages", "--verbose"}
			},
			answer: func(out []map[string]any) string {
				for _, o := range out {
					if o["type"] == "result" {
						return fmt.Sprint(o["result"])
					}
				}
				return ""
			},
		}
	}
	return []agentCLI{
		claude("claude", "ANTHROPIC_API_KEY", "anthropic", "sk-ant-api03-", 93, "AA",
			func(h http.Header) string { return h.Get("X-Api-Key") }),
		// How Claude Code authenticates in CI (claude setup-token).
		claude("claude-oauth", "CLAUDE_CODE_OAUTH_TOKEN", "claude-code", "sk-ant-oat01-", 95, "", bearer),
		codex("codex-websocket", "openai-ws", true),
		codex("codex-sse", "openai-sse", false),
		{
			name: "gemini", bin: "gemini", keyVar: "GEMINI_API_KEY",
			key:        func(t *testing.T) string { return randomToken(t, "AIza", b64url, 35) },
			credential: "gemini", hosts: []string{"generativelanguage.googleapis.com"},
			keyHeader: func(h http.Header) string { return h.Get("X-Goog-Api-Key") },
			stream:    "gemini",
			files: map[string]string{".gemini/settings.json": `{
  "general": {"disableAutoUpdate": true, "disableUpdateNag": true},
  "privacy": {"usageStatisticsEnabled": false},
  "telemetry": {"enabled": false},
  "security": {"auth": {"selectedType": "gemini-api-key"}}
}
`},
			args: func(p string) []string { return []string{"-p", p, "--output-format", "stream-json", "--skip-trust"} },
			// stream-json prints the reply only as its deltas.
			answer: func(out []map[string]any) string {
				var b strings.Builder
				for _, o := range out {
					if o["type"] == "message" && o["role"] == "assistant" {
						b.WriteString(fmt.Sprint(o["content"]))
					}
				}
				return b.String()
			},
		},
	}
}

// TestAgentCLIs: each CLI answers a prompt through agentvault. The CLI
// prints the fake's streamed answer piece by piece as it arrives; the real
// key reaches only its host; the CLI's environment and every file it wrote
// hold the placeholder, never the key; the audit log records the requests
// with the credential; stray traffic is refused by --strict and logged.
func TestAgentCLIs(t *testing.T) {
	needBinary(t)
	dir := agentCLIDir(t)
	for _, c := range agentCLIs() {
		t.Run(c.name, func(t *testing.T) { runAgentCLI(t, dir, c) })
	}
}

// newAgentFakeFor is a fake whose answer ends in a random id, so the
// answer cannot be anything the CLI printed on its own.
func newAgentFakeFor(t *testing.T) *agentFake {
	idb := make([]byte, 4)
	rand.Read(idb)
	return newAgentFake(t, hex.EncodeToString(idb))
}

// agentRun is one finished CLI run.
type agentRun struct {
	s              *session
	key, home, tmp string
	out            []stampedLine // the CLI's stdout
}

// execAgentCLI runs c against fake through agentvault and logs what the
// fake does not implement and what the proxy refused.
func execAgentCLI(t *testing.T, dir string, c agentCLI, fake *agentFake) agentRun {
	t.Helper()
	home := t.TempDir()
	tmp := t.TempDir()
	key := c.key(t)
	env := map[string]string{
		c.keyVar: key,
		"HOME":   home, "TMPDIR": tmp,
		"XDG_CONFIG_HOME": home + "/.config", "XDG_CACHE_HOME": home + "/.cache",
		"XDG_DATA_HOME": home + "/.local/share", "XDG_STATE_HOME": home + "/.local/state",
		"LANG": "C.UTF-8", "NO_COLOR": "1",
	}
	for k, v := range c.env {
		env[k] = strings.ReplaceAll(v, "{HOME}", home)
	}
	for name, content := range c.files {
		p := filepath.Join(home, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Dir(p), filepath.Base(p), content)
	}
	bin := filepath.Join(dir, "node_modules", ".bin", c.bin)
	var quoted []string
	for _, a := range c.args(agentPrompt) {
		quoted = append(quoted, shellQuote(a))
	}
	// Each line the CLI prints is stamped with the time it was read, to
	// compare with when the fake wrote the piece it carries.
	script := fmt.Sprintf(`cd "$HOME"
timeout 40 %s %s < /dev/null 2> "$OUT/cli.err" | while IFS= read -r line; do printf '%%s %%s\n' "$(date +%%s%%N)" "$line"; done > "$OUT/cli.out"
`, shellQuote(bin), strings.Join(quoted, " "))
	start := time.Now()
	s := runSession(t, sessionOpts{
		env: env, connect: fake.connect(), script: script,
		flags: []string{"--upstream-ca", fake.CAPath, "--strict", "--summary", "json"},
	})
	t.Logf("%s: exit %d after %v", c.name, s.code, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("CLI stdout:\n%s\nCLI stderr:\n%s", clip(s.file("cli.out")), clip(s.file("cli.err")))
		}
	})
	for _, r := range fake.requests() {
		if !r.Known {
			t.Logf("%s: the fake got a request it does not implement: %s", c.name, r)
		}
	}
	for _, rec := range s.audit {
		if a := fmt.Sprint(rec["action"]); a != "inject" && a != "pass" {
			t.Logf("%s: stray traffic: %s %v %v:%v%v status %v %v", c.name, a, rec["method"], rec["host"], rec["port"], rec["path"], rec["status"], rec["warning"])
		}
	}
	if s.code != 0 {
		t.Fatalf("agentvault run exited %d", s.code)
	}
	return agentRun{s: s, key: key, home: home, tmp: tmp, out: stampedLines(s.file("cli.out"))}
}

func runAgentCLI(t *testing.T, dir string, c agentCLI) {
	fake := newAgentFakeFor(t)
	r := execAgentCLI(t, dir, c, fake)
	s, key, home, tmp, out := r.s, r.key, r.home, r.tmp, r.out
	reqs := fake.requests()

	// The answer, assembled from every streamed piece.
	if got := c.answer(jsonObjects(out)); got != fake.answer() {
		t.Errorf("the CLI printed the answer %q, want the fake's %q", got, fake.answer())
	}

	// The key: the placeholder in the CLI's environment, the real value
	// on its host only.
	ph := s.placeholder(t, c.keyVar)
	if ph == key || len(ph) != len(key) || !strings.Contains(ph, "agentvault") {
		t.Errorf("%s in the CLI's environment is not a placeholder of the key's shape (%d characters, key %d)", c.keyVar, len(ph), len(key))
	}
	onHost := 0
	for _, r := range reqs {
		if r.Host == c.hosts[0] && r.Known {
			onHost++
			if got := c.keyHeader(r.Header); got != key {
				t.Errorf("%s reached the fake with key %q, want the real one", r, redact(got, key, ph))
			}
		}
		if !slices.Contains(c.hosts, r.Host) && (requestHolds(r, key) || requestHolds(r, ph)) {
			t.Errorf("%s carries the key or its placeholder to a host it is not for", r)
		}
		if ext := r.Header.Get("Sec-WebSocket-Extensions"); r.WebSocket && ext != "" {
			// codex offers permessage-deflate; compressed frames would
			// hide the messages from the guards.
			t.Errorf("%s reached the fake offering extensions %q", r, ext)
		}
		if r.SNI != r.Host {
			t.Errorf("%s came over TLS for %q", r, r.SNI)
		}
		if requestHolds(r, ph) {
			t.Errorf("%s reached the fake with the placeholder in it", r)
		}
	}
	if onHost == 0 {
		t.Fatalf("the fake got no model request on %s (all: %v)", c.hosts[0], reqs)
	}

	// Nothing the CLI can read or wrote holds the key.
	s.assertNoSecret(t, key)
	s.assertNoPlaceholder(t, ph)
	for _, root := range []string{home, tmp} {
		if where := filesHolding(root, secretForms(key)); len(where) > 0 {
			t.Errorf("the real key is in files the CLI can read: %v", where)
		}
	}
	if n := countFiles(home); n > 0 {
		t.Logf("%s wrote %d files under HOME; none holds the key", c.name, n)
	}

	// Streaming: the fake paused between pieces; each piece must be out
	// of the CLI before the next one was even written.
	streams := fake.streams(c.stream)
	if len(streams) == 0 {
		t.Fatalf("no %s stream was served", c.stream)
	}
	writes := streams[len(streams)-1]
	seen := out
	if c.logged {
		seen = loggedLines(s.file("cli.err"))
	}
	arrivals := pieceArrivals(seen, fake.pieces)
	var delays []string
	for i, w := range writes {
		if i >= len(arrivals) || arrivals[i] == 0 {
			t.Errorf("piece %d (%q) never printed on its own: the CLI shows no incremental output", i, fake.pieces[i])
			continue
		}
		delays = append(delays, fmt.Sprintf("%.1fms", float64(arrivals[i]-w)/1e6))
		if i+1 < len(writes) && arrivals[i] >= writes[i+1] {
			t.Errorf("piece %d printed only after piece %d was written: the stream was buffered", i, i+1)
		}
	}
	t.Logf("%s: delay from the fake's write to the CLI's output, per piece: %s", c.name, strings.Join(delays, " "))

	// The audit log: every model request injected with the credential.
	injected := auditFind(s.audit, map[string]any{"action": "inject", "host": c.hosts[0], "credential": c.credential})
	if len(injected) == 0 {
		t.Errorf("the audit log records no request to %s injected with %q:\n%s", c.hosts[0], c.credential, s.auditRaw)
	}
	if len(injected) < onHost {
		t.Errorf("the fake answered %d requests on %s, the audit log records %d injected", onHost, c.hosts[0], len(injected))
	}
	if in, out := fake.wsBytes(); in > 0 {
		// A WebSocket session is one record: the upgrade, then the bytes
		// of the frames each way (the fake counts payloads, the proxy
		// frames, so the proxy's count is at least the fake's).
		ws := auditFind(s.audit, map[string]any{"host": c.hosts[0], "status": 101, "credential": c.credential})
		if len(ws) != 1 {
			t.Errorf("the audit log has %d records of the WebSocket session, want 1", len(ws))
		} else if req, resp := ws[0]["req_bytes"].(float64), ws[0]["resp_bytes"].(float64); req < float64(in) || resp < float64(out) {
			t.Errorf("the WebSocket session's record counts %v bytes sent and %v received; the fake got %d and sent %d", req, resp, in, out)
		}
	}

	// The JSON summary agrees.
	var sum struct {
		Hosts []struct {
			Host        string   `json:"host"`
			Injected    int      `json:"injected"`
			Credentials []string `json:"credentials"`
		} `json:"hosts"`
	}
	found := false
	for _, line := range strings.Split(s.stderr, "\n") {
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &sum) == nil {
			for _, h := range sum.Hosts {
				if h.Host == c.hosts[0] {
					found = true
					if h.Injected != len(injected) || !slices.Contains(h.Credentials, c.credential) {
						t.Errorf("the summary says %d requests to %s injected with %v, the audit log %d with %q", h.Injected, h.Host, h.Credentials, len(injected), c.credential)
					}
				}
			}
		}
	}
	if !found {
		t.Errorf("the JSON summary has no entry for %s", c.hosts[0])
	}
}

// TestAgentCLIReflection: an upstream that hands the key back in an event
// of the streamed answer shows Claude Code the placeholder in its place;
// the key reaches no output and no file (Claude Code saves every answer
// under CLAUDE_CONFIG_DIR/projects), and the audit log marks the response
// redacted. A key split across two events is not recognised (the guard
// sees bytes, not the text the CLI joins): see docs/development/testing.md.
func TestAgentCLIReflection(t *testing.T) {
	needBinary(t)
	dir := agentCLIDir(t)
	c := agentCLIs()[0]
	fake := newAgentFakeFor(t)
	fake.setReflect(c.keyHeader)
	r := execAgentCLI(t, dir, c, fake)
	ph := r.s.placeholder(t, c.keyVar)
	if got, want := c.answer(jsonObjects(r.out)), fake.answer()+" key="+ph; got != want {
		t.Errorf("the CLI printed %q, want %q (the fake's answer with the placeholder for the key)", redact(got, r.key, ph), want)
	}
	r.s.assertNoSecret(t, r.key)
	r.s.assertNoPlaceholder(t, ph)
	for _, root := range []string{r.home, r.tmp} {
		if where := filesHolding(root, secretForms(r.key)); len(where) > 0 {
			t.Errorf("the real key is in files the CLI can read: %v", where)
		}
	}
	if len(auditFind(r.s.audit, map[string]any{"path": "/v1/messages", "redacted": true})) == 0 {
		t.Errorf("no audit record of /v1/messages is marked redacted:\n%s", r.s.auditRaw)
	}
}

// stampedLine is a line of output with the time it was seen (UnixNano).
type stampedLine struct {
	ns   int64
	text string
}

// stampedLines reads the child script's "<UnixNano> <line>" output.
func stampedLines(out string) []stampedLine {
	var lines []stampedLine
	for _, line := range strings.Split(out, "\n") {
		stamp, rest, ok := strings.Cut(line, " ")
		if ns, err := strconv.ParseInt(stamp, 10, 64); ok && err == nil {
			lines = append(lines, stampedLine{ns, rest})
		}
	}
	return lines
}

// loggedLines reads a log whose lines start with an RFC 3339 time (codex's
// tracing output).
func loggedLines(log string) []stampedLine {
	var lines []stampedLine
	for _, line := range strings.Split(log, "\n") {
		stamp, rest, ok := strings.Cut(line, " ")
		if ts, err := time.Parse(time.RFC3339Nano, stamp); ok && err == nil {
			lines = append(lines, stampedLine{ts.UnixNano(), rest})
		}
	}
	return lines
}

// jsonObjects decodes the lines that are JSON objects.
func jsonObjects(lines []stampedLine) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		var o map[string]any
		if json.Unmarshal([]byte(l.text), &o) == nil {
			out = append(out, o)
		}
	}
	return out
}

// pieceArrivals is, per piece, the time of the first line that carries it
// as a JSON string of its own ("piece"), 0 if none.
func pieceArrivals(lines []stampedLine, pieces []string) []int64 {
	arr := make([]int64, len(pieces))
	for _, l := range lines {
		for i, p := range pieces {
			if arr[i] == 0 && strings.Contains(l.text, strconv.Quote(p)) {
				arr[i] = l.ns
			}
		}
	}
	return arr
}

func requestHolds(r agentRequest, value string) bool {
	for _, form := range secretForms(value) {
		if strings.Contains(r.Body, form) || strings.Contains(r.Query, form) || strings.Contains(r.Path, form) {
			return true
		}
		for _, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, form) {
					return true
				}
			}
		}
	}
	return false
}

// filesHolding lists the files under root that contain any of forms.
func filesHolding(root string, forms []string) []string {
	var out []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > 64<<20 {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		for _, f := range forms {
			if strings.Contains(string(b), f) {
				out = append(out, path)
				break
			}
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func countFiles(root string) int {
	n := 0
	filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./=:,@+-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
