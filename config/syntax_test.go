package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestSyntaxErrorPositions checks the printed position of YAML syntax errors
// where yaml.v3 itself reports the wrong line (its numbers are noted).
func TestSyntaxErrorPositions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"tab indentation in list item", // yaml.v3 says line 3
			"version: 1\ncredentials:\n  - name: a\n\tsecret: env:A\n  - name: b\n",
			"a.yaml:4:1: tab character in indentation (YAML indents with spaces only)"},
		{"tab after spaces", // yaml.v3 says line 4, without saying it is a tab
			"version: 1\nbackends:\n  vault:\n  \taddress: x\ncredentials: []\n",
			"a.yaml:4:3: tab character in indentation (YAML indents with spaces only)"},
		{"tab deep in file", "version: 1\ncredentials:\n  - name: a\n    secret: env:A\n    hosts: [a.com]\n\n  - name: b\n    secret: env:B\n\t\thosts: [b.com]\n",
			"a.yaml:9:1: tab character in indentation (YAML indents with spaces only)"},
		{"unclosed bracket mid-file", // yaml.v3 says line 3
			"version: 1\ncredentials:\n  - name: a\n    hosts: [a.com, b.com\n    secret: env:A\n  - name: b\n    secret: env:B\negress:\n  default: allow\n",
			"a.yaml:4:12: unclosed '[' (no matching ']')"},
		{"unclosed bracket at end", "version: 1\ncredentials:\n  - name: a\n    hosts: [a.com, b.com\n",
			"a.yaml:4:12: unclosed '[' (no matching ']')"},
		{"unclosed bracket later closed by another", "credentials:\n  - name: a\n    hosts: [a.com\n    secret: env:A\negress:\n  allow: [x.com]\n",
			"a.yaml:3:12: unclosed '[' (no matching ']')"},
		{"unclosed brace", // yaml.v3 says line 3
			"version: 1\ncredentials:\n  - name: a\n    inject: {type: bearer\n    secret: env:A\n  - name: b\n",
			"a.yaml:4:13: unclosed '{' (no matching '}')"},
		{"unclosed double quote", "version: 1\ncredentials:\n  - name: \"a\n    secret: env:A\n  - name: b\n    secret: env:B\n",
			"a.yaml:3:11: unterminated quoted string (no closing \")"},
		{"unclosed single quote", // yaml.v3 says line 2
			"version: 1\ncredentials:\n  - name: 'a\n    secret: env:A\n  - name: 'b'\n    secret: env:B\n",
			"a.yaml:3:11: unterminated quoted string (no closing ')"},
		{"bad indentation", // yaml.v3 says line 2
			"version: 1\ncredentials:\n  - name: a\n    secret: env:A\n   hosts: [x]\n",
			"a.yaml:5: did not find expected '-' indicator (check the indentation of this line)"},
		{"over-indented key", "credentials:\n  - name: a\n    secret: env:A\n      hosts: [x]\n",
			"a.yaml:4: mapping values are not allowed in this context"},
		{"under-indented key", "egress:\n  default: allow\n allow: [a]\n",
			"a.yaml:3: did not find expected key (check the indentation of this line)"},
		{"unknown anchor", "credentials:\n  - name: a\n    secret: *nope\n",
			"a.yaml:3: unknown anchor 'nope' referenced"},
		{"mapping in plain scalar", "version: 1\ncredentials:\n  - name: a: b\n",
			"a.yaml:3: mapping values are not allowed in this context"},
		{"brackets inside quotes and block scalars do not count",
			"backends:\n  op:\n    type: exec\n    script: |\n      echo \"[unbalanced {\n    note: \"a [b\"\ncredentials:\n  - name: a\n    hosts: [a.com\n",
			"a.yaml:9:12: unclosed '[' (no matching ']')"},
		{"apostrophe in plain scalar", "audit:\n  log: don't.jsonl\negress:\n  allow: [a.com\n",
			"a.yaml:4:10: unclosed '[' (no matching ']')"},
		{"crlf line endings", "version: 1\r\ncredentials:\r\n  - name: a\r\n    hosts: [a.com\r\n",
			"a.yaml:4:12: unclosed '[' (no matching ']')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("a.yaml", []byte(tt.src))
			assertConfigError(t, err, tt.want)
		})
	}
}

// A long file falls back to yaml.v3's line (and still is a ConfigError).
func TestSyntaxErrorLongFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("egress:\n  allow:\n")
	for i := 0; i < maxLocateLines+10; i++ {
		fmt.Fprintf(&b, "    - h%d.example.com\n", i)
	}
	b.WriteString("  deny: [x\n")
	_, err := Parse("big.yaml", []byte(b.String()))
	if ce, ok := err.(*ConfigError); !ok || ce.Line == 0 || ce.File != "big.yaml" {
		t.Fatalf("err = %#v", err)
	}
}

func TestScanOpen(t *testing.T) {
	tests := []struct {
		src  string
		want *openMark
	}{
		{"a: [1, 2]\n", nil},
		{"a: [1,\n  2]\n", nil},
		{"a: [1, {b: 2}\n", &openMark{'[', 1, 4}},
		{"a: [1, {b: 2\n", &openMark{'{', 1, 8}},
		{"a: \"x # y\n", &openMark{'"', 1, 4}},
		{"a: \"x \\\" y\"\n", nil},
		{"a: 'it''s'\n", nil},
		{"a: 'it''s\n", &openMark{'\'', 1, 4}},
		{"a: b # [c\n", nil},
		{"a: b#[c\n", nil},
		{"a: x[y\n", nil},
		{"- [a\n", &openMark{'[', 1, 3}},
		{"a: &anchor [x\n", &openMark{'[', 1, 12}},
		{"a: >\n  [unclosed\nb: [x\n", &openMark{'[', 3, 4}},
	}
	for _, tt := range tests {
		got := scanOpen(strings.SplitAfter(tt.src, "\n"))
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("scanOpen(%q) = %+v, want %+v", tt.src, got, tt.want)
		}
	}
}
