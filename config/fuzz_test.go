package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse: any input either parses or fails with a *ConfigError that points
// inside the file; the parser never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte("version: 1\ncredentials:\n  - name: a\n    secret: env:A\n    hosts: [a.example.com]\n"))
	f.Add([]byte("version: 1\ncredentials:\n\t- name: a\n"))
	f.Add([]byte("credentials: [\n"))
	f.Add([]byte("version: 1\nbackends:\n  op: {type: exec, command: [op, read]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			for _, c := range cfg.Credentials {
				if len(c.Hosts) == 0 || c.Name == "" {
					t.Fatalf("accepted credential %+v", c)
				}
			}
			return
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("error %T is not a *ConfigError: %v", err, err)
		}
		// YAML breaks lines at \n, \r\n and a lone \r.
		lines := strings.Count(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") + strings.Count(strings.ReplaceAll(string(data), "\r\n", ""), "\r") + 1
		if ce.Line < 0 || ce.Line > lines+1 {
			t.Fatalf("line %d outside a %d-line file: %v", ce.Line, lines, err)
		}
	})
}

// FuzzParseRef: a parsed reference prints back to what was parsed, and its
// error never repeats the input (which may be a pasted token).
func FuzzParseRef(f *testing.F) {
	f.Add("vault:secret/agents/github#token")
	f.Add("aws:prod/db?version_stage=AWSPREVIOUS#password")
	f.Add("ghp_abcdefghijklmnopqrstuvwxyz0123456789")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error repeats the input: %v", err)
			}
			return
		}
		if r.String() != s || r.Backend == "" {
			t.Fatalf("%q parsed to %+v", s, r)
		}
	})
}
