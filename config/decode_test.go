package config

import (
	"reflect"
	"testing"
	"time"

	"github.com/agentvault/agentvault/backends"
)

type vaultAuthOpts struct {
	Method       string `yaml:"method"`
	RoleID       string `yaml:"role_id"`
	SecretIDFile string `yaml:"secret_id_file"`
}

type commonOpts struct {
	Timeout time.Duration `yaml:"timeout"`
}

type vaultOpts struct {
	Address   string        `yaml:"address"`
	Namespace string        `yaml:"namespace"`
	Auth      vaultAuthOpts `yaml:"auth"`
	Headers   map[string]string
	Roots     []struct {
		File string `yaml:"file"`
	} `yaml:"roots"`
	Common commonOpts `yaml:",inline"`
	Skip   string     `yaml:"-"`
}

func decodeBackend(t *testing.T, src string, v any) error {
	t.Helper()
	// These tests decode into their own option type, not the backend's.
	defer func(f func(backends.Options) error) { checkOptions = f }(checkOptions)
	checkOptions = func(backends.Options) error { return nil }
	cfg, err := Parse("b.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b, ok := cfg.LookupBackend("vault")
	if !ok {
		t.Fatal("no vault backend")
	}
	return b.Decode(v)
}

func TestBackendDecode(t *testing.T) {
	src := "backends:\n  vault:\n    type: vault\n    address: https://v:8200\n    timeout: 5s\n    auth: {method: approle, role_id: r}\n    headers: {X-A: b}\n    roots:\n      - file: /ca.pem\n"
	var o vaultOpts
	if err := decodeBackend(t, src, &o); err != nil {
		t.Fatal(err)
	}
	want := vaultOpts{Address: "https://v:8200", Auth: vaultAuthOpts{Method: "approle", RoleID: "r"},
		Headers: map[string]string{"X-A": "b"}, Common: commonOpts{Timeout: 5 * time.Second}}
	want.Roots = append(want.Roots, struct {
		File string `yaml:"file"`
	}{"/ca.pem"})
	if !reflect.DeepEqual(o, want) {
		t.Errorf("decoded %+v", o)
	}

	// A merge key and an alias are expanded like yaml.v3 would.
	src = "x-auth: &auth {method: jwt}\n"
	if _, err := Parse("b.yaml", []byte(src)); err == nil {
		t.Error("unknown top-level key accepted")
	}
	src = "backends:\n  base: &base\n    type: vault\n    address: https://a\n  vault:\n    <<: *base\n    namespace: ns\n"
	o = vaultOpts{}
	if err := decodeBackend(t, src, &o); err != nil {
		t.Fatal(err)
	}
	if o.Address != "https://a" || o.Namespace != "ns" {
		t.Errorf("merged = %+v", o)
	}

	// Undeclared and empty backends decode nothing.
	cfg, _ := Parse("b.yaml", []byte("backends:\n  file:\n"))
	for _, name := range []string{"vault", "file", "aws"} {
		b, ok := cfg.LookupBackend(name)
		if !ok {
			t.Fatalf("%s not found", name)
		}
		o := vaultOpts{Address: "keep"}
		if err := b.Decode(&o); err != nil || o.Address != "keep" {
			t.Errorf("%s: Decode = %v, %+v", name, err, o)
		}
	}
	if b, _ := cfg.LookupBackend("aws"); b.Type != "aws-secretsmanager" || b.Line != 0 {
		t.Errorf("aws = %+v", b)
	}
	if _, ok := cfg.LookupBackend("exec"); ok {
		t.Error("undeclared exec backend found")
	}
}

func TestBackendDecodeErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown key", "backends:\n  vault:\n    adress: https://v\n",
			`b.yaml:3:5: backend "vault": unknown key "adress" (known: address, auth, headers, namespace, roots, timeout)`},
		{"unknown nested key", "backends:\n  vault:\n    auth:\n      method: approle\n      roleid: x\n",
			`b.yaml:5:7: backend "vault".auth: unknown key "roleid" (known: method, role_id, secret_id_file)`},
		{"unknown key in list", "backends:\n  vault:\n    roots:\n      - {file: a, mode: x}\n",
			`b.yaml:4:19: backend "vault".roots: unknown key "mode" (known: file)`},
		{"ignored field is unknown", "backends:\n  vault:\n    skip: x\n", `b.yaml:3:5: backend "vault": unknown key "skip" ...`},
		{"duplicate nested key", "backends:\n  vault:\n    auth:\n      method: a\n      method: b\n", `b.yaml:5:7: backend "vault".auth: duplicate key "method" (first at line 4)`},
		{"wrong type", "backends:\n  vault:\n    address: https://v\n    auth: approle\n",
			`b.yaml:4: backend "vault": cannot decode a string into config.vaultAuthOpts`},
		{"bad duration", "backends:\n  vault:\n    timeout: forever\n", `b.yaml:3: backend "vault": cannot decode a string into time.Duration`},
		{"value not echoed", "backends:\n  vault:\n    auth:\n      method: [s3cr3t-token-value]\n",
			`b.yaml:4: backend "vault": cannot decode a list into string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o vaultOpts
			assertConfigError(t, decodeBackend(t, tt.src, &o), tt.want)
		})
	}
}

// TestBackendOptionsCheckedAtLoad: a backend's options are decoded into the
// backend's own types when the file is parsed, so a typo is a configuration
// error with its position even for a backend no credential uses.
func TestBackendOptionsCheckedAtLoad(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"unknown vault key, backend unused", "backends:\n  vault:\n    adress: https://v\n",
			`c.yaml:3:5: backend "vault": unknown key "adress" (known: address, auth, ca_cert, namespace, timeout)`},
		{"unknown vault auth key", "backends:\n  vault:\n    auth: {method: approle, roleid: r}\n",
			`c.yaml:3:29: backend "vault".auth: unknown key "roleid" ...`},
		{"options on a backend that takes none", "backends:\n  secrets:\n    type: file\n    path: /x\n",
			`c.yaml:4:5: backend "secrets": unknown key "path" ...`},
		{"exec env not a variable name", "backends:\n  op:\n    type: exec\n    command: [op, read]\n    env: [\"OP TOKEN\"]\n",
			`c.yaml:2: backend "op": env: "OP TOKEN" is not an environment variable name ...`},
		{"aws key misspelt", "backends:\n  aws:\n    regoin: eu-west-1\n",
			`c.yaml:3:5: backend "aws": unknown key "regoin" (known: ca_file, endpoint, profile, region)`},
		{"vault timeout not a duration", "backends:\n  vault:\n    timeout: soon\n",
			`c.yaml:3: backend "vault": cannot decode a string into time.Duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.src))
			assertConfigError(t, err, tt.want)
		})
	}
}
