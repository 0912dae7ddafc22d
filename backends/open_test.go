package backends

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// yamlDecode imitates session's strict decoder for a backend's mapping.
func yamlDecode(t *testing.T, doc string) func(any) error {
	t.Helper()
	return func(v any) error {
		if strings.TrimSpace(doc) == "" {
			return nil
		}
		dec := yaml.NewDecoder(strings.NewReader(doc))
		dec.KnownFields(true)
		return dec.Decode(v)
	}
}

func noEnv(string) (string, bool) { return "", false }

func TestOpen(t *testing.T) {
	tests := []struct {
		typ, doc, errHas string
	}{
		{"env", "", ""},
		{"file", "", ""},
		{"exec", "command: [echo]", ""},
		{"env", "extra: 1", "field extra not found"},
		{"file", "path: /x", "field path not found"},
		{"exec", "", "command is required"},
		{"exec", "command: []", "command is required"},
		{"exec", `command: [""]`, "command is required"},
		{"exec", "command: [echo]\ntimeout: -1s", "must not be negative"},
		{"exec", "command: [echo]\ntimeout: soon", "cannot unmarshal"},
		{"exec", "command: [echo]\ntimeout: 30", "cannot unmarshal"},
		{"exec", "command: [echo]\nenv: {A: b}", "cannot unmarshal"},
		{"vault", "", "no Vault address (set address: or VAULT_ADDR)"},
		{"vault", "address: http://127.0.0.1:1", ""},
		{"vault", "address: http://127.0.0.1:1\nauth: {method: approle, role_id: r}", ""},
		{"vault", "address: http://127.0.0.1:1\ntoken: x", "field token not found"},
		{"aws-secretsmanager", "", ""},
		{"aws-secretsmanager", "region: eu-west-1\nprofile: p\nendpoint: http://127.0.0.1:1\nca_file: /x", ""},
		{"aws-secretsmanager", "endpoint: ftp://x", "endpoint must be an http:// or https:// URL"},
		{"aws-secretsmanager", "endpoint: 127.0.0.1:4566", "endpoint must be an http:// or https:// URL"},
		{"aws-secretsmanager", "regions: eu-west-1", "field regions not found"},
		{"infisical", "project_id: p\nenvironment: dev\nauth: {client_id: i, client_secret: s}", ""},
		{"infisical", "", "project_id is required"},
		{"infisical", "project_id: p\nenvironment: dev\nauth: {method: access-token, token_file: /t}", ""},
		{"infisical", "project_id: p\nenvironment: dev\nsiteurl: x", "field siteurl not found"},
		{"bogus", "", `unknown backend type "bogus"`},
		{"", "", `unknown backend type ""`},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.doc, func(t *testing.T) {
			b, err := Open(Options{Name: "x", Type: tt.typ, Decode: yamlDecode(t, tt.doc), LookupEnv: noEnv})
			if tt.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				if b.Type() != tt.typ {
					t.Errorf("Type() = %q, want %q", b.Type(), tt.typ)
				}
				if err := b.Close(context.Background()); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error %v, want one containing %q", err, tt.errHas)
			}
		})
	}
}

func TestOpenNilFuncs(t *testing.T) {
	// Decode and LookupEnv default sensibly so a zero Options is usable.
	b, err := Open(Options{Type: "env"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AGENTVAULT_TEST_NILFUNCS", "v")
	s, err := b.Resolve(context.Background(), "AGENTVAULT_TEST_NILFUNCS")
	if err != nil || s.Value != "v" {
		t.Fatalf("got %q, %v", s.Value, err)
	}
}

func TestDecodeErrorPassedThrough(t *testing.T) {
	want := errors.New("agentvault.yaml:7: boom")
	_, err := Open(Options{Type: "exec", Decode: func(any) error { return want }})
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}
