package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrokeredLoginZeroConfig: `agentvault run -- claude` with no config
// file brokers the Claude subscription login it finds, so the agent gets
// placeholders, its refresh goes through the broker and the user's store
// holds the refreshed real tokens afterwards. Another command run that way
// is not brokered, and a store that cannot be brokered is named in the
// summary's notes instead of stopping the run.
func TestBrokeredLoginZeroConfig(t *testing.T) {
	needBinary(t)
	if pythonExe == "" {
		skipOutsideCI(t, "python3 is missing")
	}
	f, access, refresh := startClaudeLogin(t)

	home := t.TempDir()
	store := filepath.Join(home, ".claude", ".credentials.json")
	if err := os.MkdirAll(filepath.Dir(store), 0o700); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]any{"claudeAiOauth": map[string]any{"accessToken": access, "refreshToken": refresh,
		"expiresAt": 1767225600000, "scopes": []string{"user:inference"}, "subscriptionType": "max"}})
	if err := os.WriteFile(store, data, 0o600); err != nil {
		t.Fatal(err)
	}

	// Stand-ins named as the CLIs: the login client, then what it saw.
	bin := t.TempDir()
	agent := fmt.Sprintf(`#!/bin/sh
env > "$OUT/env.txt"
'%s' '%s' claude 'https://%s%s' 'https://%s/v1/ping' "$OUT" 2> "$OUT/client.err"
cat "$CLAUDE_CONFIG_DIR/.credentials.json" > "$OUT/copy.json" 2>&1
`, pythonExe, testdataPath("py", "login_client.py"), f.tokenHost, f.tokenPath, f.apiHost)
	for _, name := range []string{"claude", "not-claude"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(agent), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	flags := []string{"run", "--upstream-ca", f.caPEM,
		"--connect-to", connectTo(f.tokenHost, 443, f.port), "--connect-to", connectTo(f.apiHost, 443, f.port), "--"}

	t.Run("brokered", func(t *testing.T) {
		out := t.TempDir()
		_, stderr, code := run(t, map[string]string{"HOME": home, "OUT": out}, append(flags, filepath.Join(bin, "claude"))...)
		if code != 0 {
			t.Fatalf("exit %d\n%s\nclient: %s", code, stderr, readFileOr(filepath.Join(out, "client.err"), ""))
		}
		if !strings.Contains(stderr, "zero-config") || !strings.Contains(stderr, "claude-login") {
			t.Errorf("the banner does not name the brokered login:\n%s", stderr)
		}
		for _, step := range []string{"api1", "api2", "refresh1"} {
			if st := readFileOr(filepath.Join(out, step+".status"), ""); st != "200" {
				t.Fatalf("%s: status %q; stderr:\n%s", step, st, stderr)
			}
		}
		f.mu.Lock()
		issued := append([]string{access, refresh}, f.issued...)
		newAccess, newRefresh := f.access[len(f.access)-1], f.refresh
		f.mu.Unlock()
		for _, name := range []string{"env.txt", "copy.json", "client.err"} {
			got := readFileOr(filepath.Join(out, name), "")
			for _, s := range issued {
				if strings.Contains(got, s) {
					t.Errorf("%s holds a real token", name)
				}
			}
		}
		if strings.Contains(readFileOr(filepath.Join(out, "env.txt"), ""), "CLAUDE_CONFIG_DIR="+filepath.Join(home, ".claude")) {
			t.Error("the agent was pointed at the user's own directory")
		}
		var after struct {
			O map[string]any `json:"claudeAiOauth"`
		}
		if err := json.Unmarshal([]byte(readFileOr(store, "")), &after); err != nil {
			t.Fatal(err)
		}
		if after.O["accessToken"] != newAccess || after.O["refreshToken"] != newRefresh {
			t.Error("the user's store does not hold the refreshed real tokens")
		}
	})

	t.Run("another command is not brokered", func(t *testing.T) {
		out := t.TempDir()
		_, stderr, code := run(t, map[string]string{"HOME": home, "OUT": out}, append(flags, filepath.Join(bin, "not-claude"))...)
		if code != 0 && !strings.Contains(stderr, "zero-config") {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if strings.Contains(stderr, "claude-login") || strings.Contains(readFileOr(filepath.Join(out, "env.txt"), ""), "CLAUDE_CONFIG_DIR=") {
			t.Errorf("a command not named claude got the login brokered:\n%s", stderr)
		}
	})

	t.Run("a store that cannot be brokered is a note", func(t *testing.T) {
		bad := t.TempDir()
		if err := os.MkdirAll(filepath.Join(bad, ".claude"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(bad, ".claude", ".credentials.json"), []byte(`{"somethingElse":{}}`), 0o600)
		out := t.TempDir()
		_, stderr, code := run(t, map[string]string{"HOME": bad, "OUT": out}, append(flags, filepath.Join(bin, "claude"))...)
		if code == 78 || !strings.Contains(stderr, "subscription login is not brokered") {
			t.Errorf("exit %d; want the run to go on with a note:\n%s", code, stderr)
		}
	})
}
