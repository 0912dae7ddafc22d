package backends

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileResolve(t *testing.T) {
	const secret = "file-SECRET-456"
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("plain", secret)
	write("lf", secret+"\n")
	write("crlf", secret+"\r\n")
	write("two-lf", secret+"\n\n")
	write("crlf-lf", secret+"\r\n\n")
	write("internal", "line1\nline2\n")
	write("spaces", "  "+secret+" \t\n")
	write("cr", secret+"\r")
	write("json", `{"token":"`+secret+`","port":5432,"tls":true}`+"\n")
	write("empty", "")
	write("only-lf", "\n")
	write("home/.secret", secret+"\n")
	write("hash#dir/x.json", `{"token":"`+secret+`"}`)
	write("big", strings.Repeat("x", maxFileSize+1))
	write("exact", strings.Repeat("y", maxFileSize))

	lookup := func(k string) (string, bool) {
		if k == "HOME" {
			return home, true
		}
		return "", false
	}
	b, err := Open(Options{Name: "file", Type: "file", LookupEnv: lookup})
	if err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name, ref, want, errHas string
	}{
		{"plain", p("plain"), secret, ""},
		{"lf stripped", p("lf"), secret, ""},
		{"crlf stripped", p("crlf"), secret, ""},
		{"only one lf", p("two-lf"), secret + "\n", ""},
		{"only one of crlf+lf", p("crlf-lf"), secret + "\r\n", ""},
		{"internal newlines kept", p("internal"), "line1\nline2", ""},
		{"spaces kept", p("spaces"), "  " + secret + " \t", ""},
		{"lone cr kept", p("cr"), secret + "\r", ""},
		{"json string field", p("json") + "#token", secret, ""},
		{"json number field", p("json") + "#port", "5432", ""},
		{"json bool field", p("json") + "#tls", "true", ""},
		{"missing field", p("json") + "#password", "", `field "password" not found`},
		{"field on non-json", p("plain") + "#token", "", "not a JSON object"},
		{"tilde", "~/.secret", secret, ""},
		{"path with hash and field", p("hash#dir/x.json") + "#token", secret, ""},
		{"exactly 1 MiB", p("exact"), strings.Repeat("y", maxFileSize), ""},
		{"too big", p("big"), "", "larger than 1 MiB"},
		{"missing", p("nope"), "", "no such file or directory"},
		{"directory", dir, "", "is a directory"},
		{"empty", p("empty"), "", "is empty"},
		{"only newline", p("only-lf"), "", "is empty"},
		{"tilde user", "~root/x", "", "only ~ and ~/ are expanded"},
		{"empty ref", "", "", "empty file path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := b.Resolve(context.Background(), tt.ref)
			if tt.errHas == "" {
				if err != nil || s.Value != tt.want {
					t.Fatalf("got %q, %v; want %q", trunc(s.Value), err, trunc(tt.want))
				}
				if s.TTL != 0 {
					t.Errorf("TTL = %v, want 0", s.TTL)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error %v, want one containing %q", err, tt.errHas)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the value: %q", err)
			}
			base, _ := SplitField(tt.ref)
			if base != "" && !strings.HasPrefix(base, "~") && !strings.Contains(err.Error(), base) {
				t.Errorf("error %q does not name the path %s", err, base)
			}
		})
	}
	if got := b.ConsumedEnv(); len(got) != 0 {
		t.Errorf("ConsumedEnv() = %q, want none", got)
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
