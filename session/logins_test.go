package session

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentvault/agentvault/ca"
	"github.com/agentvault/agentvault/config"
)

func TestLogins(t *testing.T) {
	const access = "sk-ant-oat01-realrealrealrealrealrealrealrealrealrealrealrealrealreal0123456789abcdefghijklmnopqrstuvwxyz012AA"
	const refresh = "sk-ant-ort01-realrealrealrealrealrealrealrealrealrealrealrealrealreal0123456789abcdefghijklmnopqrstuvwxyz012AA"
	store, _ := json.Marshal(map[string]any{"claudeAiOauth": map[string]any{"accessToken": access, "refreshToken": refresh}})
	cases := []struct {
		name string
		// setup makes HOME and returns the variables of agentvault's
		// environment and the directory the store must be read from
		setup   func(t *testing.T, home string) (map[string]string, string)
		wantErr string
		// links the session copy must have, name -> target
		links map[string]string
	}{
		{"default directory, global config linked", func(t *testing.T, home string) (map[string]string, string) {
			dir := filepath.Join(home, ".claude")
			os.Mkdir(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "settings.json"), []byte("{}"), 0o600)
			os.WriteFile(filepath.Join(home, ".claude.json"), []byte("{}"), 0o600)
			return nil, dir
		}, "", map[string]string{"settings.json": ".claude/settings.json", ".claude.json": ".claude.json"}},
		{"CLAUDE_CONFIG_DIR", func(t *testing.T, home string) (map[string]string, string) {
			dir := filepath.Join(home, "cfg")
			os.Mkdir(dir, 0o700)
			os.WriteFile(filepath.Join(home, ".claude.json"), []byte("{}"), 0o600)
			return map[string]string{"CLAUDE_CONFIG_DIR": dir}, dir
		}, "", map[string]string{}},
		{"CLAUDE_SECURESTORAGE_CONFIG_DIR holds the store", func(t *testing.T, home string) (map[string]string, string) {
			os.Mkdir(filepath.Join(home, ".claude"), 0o700)
			sec := filepath.Join(home, "secure")
			os.Mkdir(sec, 0o700)
			return map[string]string{"CLAUDE_SECURESTORAGE_CONFIG_DIR": sec}, sec
		}, "", map[string]string{}},
		{"no store", func(t *testing.T, home string) (map[string]string, string) {
			return nil, ""
		}, "no such file", nil},
		{"home unknown", func(t *testing.T, home string) (map[string]string, string) {
			return map[string]string{"AV_TEST_NO_HOME": "1"}, ""
		}, "home directory is unknown", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			env, storeDir := tc.setup(t, home)
			if storeDir != "" {
				if err := os.WriteFile(filepath.Join(storeDir, ".credentials.json"), store, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			if env["AV_TEST_NO_HOME"] != "" {
				home = ""
			}
			r := &runner{opts: Options{LookupEnv: lookup, Home: home}, cfg: &config.Config{Logins: []string{"claude"}}}
			err := r.openLogins()
			if tc.wantErr != "" {
				var re *RunError
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &re) || re.Kind != FailConfig {
					t.Fatalf("openLogins: %v, want a config failure with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.dir, err = ca.NewDir(func(string) (string, bool) { return "", false }, "av-test"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.dir.Remove() })
			childEnv, err := r.writeLogins()
			if err != nil {
				t.Fatal(err)
			}
			cp := childEnv["CLAUDE_CONFIG_DIR"]
			if cp == "" || childEnv["CLAUDE_SECURESTORAGE_CONFIG_DIR"] != cp || !strings.HasPrefix(cp, r.dir.Path()) {
				t.Fatalf("child variables %v", childEnv)
			}
			st, err := os.Lstat(filepath.Join(cp, ".credentials.json"))
			if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
				t.Fatalf("brokered store: %v %v", st, err)
			}
			data, _ := os.ReadFile(filepath.Join(cp, ".credentials.json"))
			if strings.Contains(string(data), access) || strings.Contains(string(data), refresh) || !strings.Contains(string(data), "sk-ant-oat01-") {
				t.Fatalf("brokered store %s", data)
			}
			for name, target := range tc.links {
				if got, err := os.Readlink(filepath.Join(cp, name)); err != nil || got != filepath.Join(home, target) {
					t.Errorf("%s links to %q (%v), want %s", name, got, err, target)
				}
			}
			if entries, _ := os.ReadDir(cp); len(entries) != len(tc.links)+1 {
				t.Errorf("session copy has %d entries, want %d", len(entries), len(tc.links)+1)
			}
			// The login is bound to its hosts for the proxy, with the
			// current real access token.
			creds := r.loginCredentials()
			if len(creds) != 1 || creds[0].Name != "claude-login" || creds[0].Secret() != access ||
				strings.Join(creds[0].Hosts, ",") != "api.anthropic.com,platform.claude.com" {
				t.Fatalf("login credential %+v", creds)
			}
		})
	}
}

// TestAutoLogins: zero-config mode brokers the login of the CLI being run
// when its store is a regular file at an absolute path, and nothing else.
func TestAutoLogins(t *testing.T) {
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, ".claude"), 0o700)
	os.WriteFile(filepath.Join(home, ".claude", ".credentials.json"), []byte("{}"), 0o600)
	cwd := t.TempDir()
	// A repository's planted store, found only if HOME resolved relative.
	os.Mkdir(filepath.Join(cwd, ".claude"), 0o700)
	os.WriteFile(filepath.Join(cwd, ".claude", ".credentials.json"), []byte("{}"), 0o600)
	none := func(string) (string, bool) { return "", false }
	tests := []struct {
		name   string
		argv0  string
		home   string
		config *config.Config
		want   []string
	}{
		{"the CLI being run", "/usr/local/bin/claude", home, &config.Config{ZeroConfig: true}, []string{"claude"}},
		{"another command", "bash", home, &config.Config{ZeroConfig: true}, nil},
		{"no store for codex", "codex", home, &config.Config{ZeroConfig: true}, nil},
		{"a config file decides", "claude", home, &config.Config{}, nil},
		{"HOME unknown: not the working directory's store", "claude", "", &config.Config{ZeroConfig: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The process's working directory is the repository's, as in a
			// real run: a relative store path would find the planted one.
			t.Chdir(cwd)
			r := &runner{opts: Options{LookupEnv: none, Home: tt.home, Cwd: cwd, Argv: []string{tt.argv0}}, cfg: tt.config}
			r.autoLogins()
			if strings.Join(r.cfg.Logins, ",") != strings.Join(tt.want, ",") {
				t.Errorf("logins %v, want %v", r.cfg.Logins, tt.want)
			}
		})
	}
}
