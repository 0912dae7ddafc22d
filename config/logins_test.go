package config

import (
	"slices"
	"strings"
	"testing"
)

func TestParseLogins(t *testing.T) {
	cases := []struct {
		yaml string
		want []string
		err  string
	}{
		{"logins: [claude, codex]", []string{"claude", "codex"}, ""},
		{"logins: [codex]", []string{"codex"}, ""},
		{"logins: []", nil, ""},
		{"logins:", nil, ""},
		{"logins: [gemini]", nil, `unknown agent "gemini"`},
		{"logins: [claude, claude]", nil, `"claude" given twice`},
		{"logins: claude", nil, "expected a list"},
	}
	for _, tc := range cases {
		t.Run(tc.yaml, func(t *testing.T) {
			cfg, err := Parse("agentvault.yaml", []byte("version: 1\n"+tc.yaml+"\n"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Logins, tc.want) {
				t.Fatalf("Logins = %v, want %v", cfg.Logins, tc.want)
			}
		})
	}
}
