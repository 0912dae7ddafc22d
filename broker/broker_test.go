package broker

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenCopy(t *testing.T) {
	ca, cr := claudeAccess(), claudeRefresh()
	xa, xr := codexAccess(t), codexRefresh()
	xid := codexID(t, nil)
	apiKey := "sk-proj-" + randomB64(120)
	cases := []struct {
		name   string
		format *Format
		store  map[string]any
		// paths of the login's tokens, and their real values
		tokens map[string]string
		// fields that must come through unchanged
		kept map[string]string
		// top-level keys that must be gone
		dropped []string
	}{
		{
			name: "claude", format: Claude, store: claudeStore(ca, cr),
			tokens: map[string]string{"claudeAiOauth.accessToken": ca, "claudeAiOauth.refreshToken": cr},
			kept: map[string]string{"claudeAiOauth.subscriptionType": "max", "claudeAiOauth.expiresAt": "1767225600123",
				"claudeAiOauth.clientId": "9d1c250a-e61b-44d9-88ed-5944d1962f5e"},
		},
		{
			name: "codex", format: Codex, store: func() map[string]any {
				s := codexStore(t, xa, xr, xid)
				s["OPENAI_API_KEY"] = apiKey
				s["agent_identity"] = jwt(t, map[string]any{"agent_private_key": "PRIVATE-" + randomB64(40)})
				s["added_by_a_newer_codex"] = map[string]any{"x": []any{"y"}}
				return s
			}(),
			tokens: map[string]string{"tokens.access_token": xa, "tokens.refresh_token": xr, "tokens.id_token": xid,
				"OPENAI_API_KEY": apiKey},
			kept:    map[string]string{"tokens.account_id": "acc-1", "last_refresh": "2026-11-30T10:00:00.123456Z", "auth_mode": "chatgpt"},
			dropped: []string{"agent_identity"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), tc.format.StoreFile, tc.store, 0o600)
			b, err := Open(tc.format, path, testPlaceholder)
			if err != nil {
				t.Fatal(err)
			}
			cp := b.Copy()
			got := decode(t, cp)
			for p, real := range tc.tokens {
				ph, _ := getPath(got, strings.Split(p, ".")).(string)
				if ph == "" || ph == real {
					t.Fatalf("%s: %q in the copy", p, ph)
				}
				if len(ph) != len(real) || ph[:3] != real[:3] {
					t.Errorf("%s: placeholder %q is not shaped like %q", p, ph, real)
				}
				if r, ok := b.Real(ph); !ok || r != real {
					t.Errorf("%s: Real(placeholder) = %q, %v", p, r, ok)
				}
			}
			for p, want := range tc.kept {
				if v := getPath(got, strings.Split(p, ".")); v == nil || toString(v) != want {
					t.Errorf("%s = %v, want %s", p, v, want)
				}
			}
			for _, k := range tc.dropped {
				if _, ok := got[k]; ok {
					t.Errorf("%s copied", k)
				}
			}
			// Every credential in the store, the MCP server's included.
			noReal(t, "the copy", cp, collectSecrets(tc.store, tc.format)...)
			if tc.format == Codex {
				if _, ok := got["added_by_a_newer_codex"]; !ok {
					t.Error("an unknown field was not copied")
				}
			}
			if pairs := b.Access(); len(pairs) != 1 || pairs[0].Real != tc.tokens[strings.Join(tc.format.access, ".")] {
				t.Errorf("Access() = %v", pairs)
			}
		})
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case interface{ String() string }:
		return v.String()
	}
	return ""
}

// collectSecrets lists every string under one of format's secret keys.
func collectSecrets(v any, format *Format) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && contains(format.secretKeys, k) {
					out = append(out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func TestOpenRefuses(t *testing.T) {
	xa, xr := codexAccess(t), codexRefresh()
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) string
		want  string
		is    error
	}{
		{"symlink to a real store", func(t *testing.T, dir string) string {
			target := writeFile(t, dir, "elsewhere.json", claudeStore(claudeAccess(), claudeRefresh()), 0o600)
			link := filepath.Join(dir, ".credentials.json")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "symlink", nil},
		{"a directory", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, ".credentials.json")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file", nil},
		{"missing", func(t *testing.T, dir string) string { return filepath.Join(dir, "none.json") }, "no such file", nil},
		{"not JSON", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "auth.json")
			os.WriteFile(p, []byte("tokens: yes"), 0o600)
			return p
		}, "not JSON", nil},
		{"a JSON array", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "auth.json")
			os.WriteFile(p, []byte(`[{"tokens":{}}]`), 0o600)
			return p
		}, "not a JSON object", nil},
		{"API key only", func(t *testing.T, dir string) string {
			return writeFile(t, dir, "auth.json", map[string]any{"OPENAI_API_KEY": "sk-proj-" + randomB64(100)}, 0o600)
		}, "", ErrNoLogin},
		{"id_token claims carry the refresh token", func(t *testing.T, dir string) string {
			return writeFile(t, dir, "auth.json", codexStore(t, xa, xr, codexID(t, map[string]any{"rt": xr})), 0o600)
		}, "shows through", nil},
		{"id_token claims carry the access token in base64", func(t *testing.T, dir string) string {
			enc := base64.StdEncoding.EncodeToString([]byte("bearer " + xa))
			return writeFile(t, dir, "auth.json", codexStore(t, xa, xr, codexID(t, map[string]any{"blob": enc})), 0o600)
		}, "shows through", nil},
		{"the refresh token copied into an unknown field", func(t *testing.T, dir string) string {
			s := codexStore(t, xa, xr, codexID(t, nil))
			s["backup"] = map[string]any{"rt": xr}
			return writeFile(t, dir, "auth.json", s, 0o600)
		}, "shows through", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.setup(t, t.TempDir())
			format := Codex
			if filepath.Base(path) == ".credentials.json" {
				format = Claude
			}
			b, err := Open(format, path, testPlaceholder)
			if err == nil {
				t.Fatalf("Open succeeded; copy:\n%s", b.Copy())
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to mention %q", err, tc.want)
			}
			for _, r := range []string{xa, xr} {
				if strings.Contains(err.Error(), r) {
					t.Fatal("the error names a real token")
				}
			}
		})
	}
}

func TestOpenRefusesAnotherUsersFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	path := writeFile(t, t.TempDir(), ".credentials.json", claudeStore(claudeAccess(), claudeRefresh()), 0o644)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Claude, path, testPlaceholder); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("Open: %v", err)
	}
}

func TestPlaceholderMakerMisbehaving(t *testing.T) {
	path := writeFile(t, t.TempDir(), ".credentials.json", claudeStore(claudeAccess(), claudeRefresh()), 0o600)
	for name, maker := range map[string]func(string) string{
		"identity": func(s string) string { return s },
		"empty":    func(string) string { return "" },
		"constant": func(string) string { return "sk-ant-oat01-same" },
	} {
		if _, err := Open(Claude, path, maker); err == nil {
			t.Errorf("%s placeholder maker accepted", name)
		}
	}
}
