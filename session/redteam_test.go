package session

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentvault/agentvault/ca"
	"github.com/agentvault/agentvault/config"
)

// TestRedteamHomeFileAPIKey: the session copy of Claude Code's directory
// links ~/.claude.json as it is, and Claude Code keeps an API key made by a
// Console /login there (primaryApiKey). The agent reads it through the
// copy (or directly): the session must say so, without printing the key.
func TestRedteamHomeFileAPIKey(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, ".claude")
	os.Mkdir(dir, 0o700)
	store, _ := json.Marshal(map[string]any{"claudeAiOauth": map[string]any{
		"accessToken": "sk-ant-oat01-" + strings.Repeat("a", 95) + "AA", "refreshToken": "sk-ant-ort01-" + strings.Repeat("b", 95) + "AA"}})
	os.WriteFile(filepath.Join(dir, ".credentials.json"), store, 0o600)
	key := "sk-ant-api03-" + strings.Repeat("k", 93) + "AA"
	global, _ := json.Marshal(map[string]any{"numStartups": 3, "primaryApiKey": key})
	os.WriteFile(filepath.Join(home, ".claude.json"), global, 0o600)

	r := &runner{opts: Options{LookupEnv: func(string) (string, bool) { return "", false }, Home: home},
		cfg: &config.Config{Logins: []string{"claude"}}}
	if err := r.openLogins(); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.dir, err = ca.NewDir(func(string) (string, bool) { return "", false }, "av-test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.dir.Remove() })
	if _, err := r.writeLogins(); err != nil {
		t.Fatal(err)
	}
	ws := strings.Join(r.snapshotWarnings(), "\n")
	if !strings.Contains(ws, "primaryApiKey") || !strings.Contains(ws, ".claude.json") {
		t.Fatalf("no warning of the API key the agent can read; warnings:\n%s", ws)
	}
	if strings.Contains(ws, key) || strings.Contains(r.mask("echo "+key), key) {
		t.Fatal("the key is printed, or not masked in agentvault's output")
	}
}
