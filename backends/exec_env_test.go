package backends

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// helperMarker, as the reference, makes this test binary act as an exec
// helper that prints its exact environment (a shell would add PWD, SHLVL...).
const helperMarker = "agentvault-print-env"

// TestExecHelperProcess is the helper itself when re-executed with the
// marker as its last argument; otherwise it does nothing.
func TestExecHelperProcess(t *testing.T) {
	if n := len(os.Args); n < 2 || os.Args[n-1] != helperMarker {
		return
	}
	b, _ := json.Marshal(os.Environ())
	fmt.Println(string(b))
	os.Exit(0)
}

// TestExecHelperEnv: the helper sees the base variables and the declared
// ones, never the rest of agentvault's environment (where env: references'
// secrets live), and the declared ones are withheld from the agent.
func TestExecHelperEnv(t *testing.T) {
	full := map[string]string{
		"PATH": "/usr/bin:/bin", "HOME": "/home/u", "USER": "u", "LANG": "C.UTF-8", "TMPDIR": "/tmp/u",
		"ANTHROPIC_API_KEY":        "sk-ant-env-secret",
		"VAULT_TOKEN":              "hvs.vault-secret",
		"OP_SERVICE_ACCOUNT_TOKEN": "ops_token",
		"PASSWORD_STORE_DIR":       "/home/u/.pw",
		"LC_ALL":                   "C",
	}
	base := []string{"HOME=/home/u", "LANG=C.UTF-8", "PATH=/usr/bin:/bin", "TMPDIR=/tmp/u", "USER=u"}
	tests := []struct {
		name         string
		env          map[string]string
		declare      string
		wantEnv      []string
		wantConsumed []string
	}{
		{"base only", full, "", base, []string{}},
		{"declared", full, "env: [OP_SERVICE_ACCOUNT_TOKEN, PASSWORD_STORE_DIR, OP_SERVICE_ACCOUNT_TOKEN]",
			append(append([]string{}, base...), "OP_SERVICE_ACCOUNT_TOKEN=ops_token", "PASSWORD_STORE_DIR=/home/u/.pw"),
			[]string{"OP_SERVICE_ACCOUNT_TOKEN", "PASSWORD_STORE_DIR"}},
		{"declared but unset", full, "env: [OP_CONNECT_TOKEN]", base, []string{"OP_CONNECT_TOKEN"}},
		{"base unset", map[string]string{"PATH": "/bin", "GITHUB_TOKEN": "ghp_x"}, "", []string{"PATH=/bin"}, []string{}},
		{"empty value kept", map[string]string{"PATH": "/bin", "TMPDIR": ""}, "", []string{"PATH=/bin", "TMPDIR="}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := fmt.Sprintf("command: [%q, -test.run=^TestExecHelperProcess$]\n%s", os.Args[0], tt.declare)
			b, err := Open(Options{Name: "op", Type: "exec", Decode: yamlDecode(t, doc), LookupEnv: mapEnv(tt.env)})
			if err != nil {
				t.Fatal(err)
			}
			s, err := b.Resolve(context.Background(), helperMarker)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if err := json.Unmarshal([]byte(s.Value), &got); err != nil {
				t.Fatalf("helper output %q: %v", s.Value, err)
			}
			sort.Strings(got)
			want := append([]string{}, tt.wantEnv...)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("helper environment:\n got %q\nwant %q", got, want)
			}
			if c := b.ConsumedEnv(); !reflect.DeepEqual(append([]string{}, c...), tt.wantConsumed) {
				t.Errorf("ConsumedEnv = %q, want %q", c, tt.wantConsumed)
			}
		})
	}
}

func TestExecDeclaredEnvInvalid(t *testing.T) {
	tests := []struct{ doc, errHas string }{
		{"env: [PATH]", "always passed"},
		{"env: [OK, HOME]", "always passed"},
		{`env: ["1TOKEN"]`, "not an environment variable name"},
		{`env: ["OP-TOKEN"]`, "not an environment variable name"},
		{`env: ["A=B"]`, "not an environment variable name"},
		{`env: [""]`, "not an environment variable name"},
		{`env: ["TOKEN "]`, "not an environment variable name"},
		{"env: TOKEN", "cannot unmarshal"},
		{"envs: [TOKEN]", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.doc, func(t *testing.T) {
			_, err := Open(Options{Name: "op", Type: "exec", Decode: yamlDecode(t, "command: [op, read]\n"+tt.doc), LookupEnv: noEnv})
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error %v, want one containing %q", err, tt.errHas)
			}
		})
	}
}
