package action_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// fakeAgentvault prints each argument on its own line, then its environment,
// in place of the real binary: what the run script hands agentvault is the
// whole of its job.
const fakeAgentvault = `#!/bin/sh
for a in "$@"; do printf 'arg:%s\n' "$a"; done
env | sed 's/^/env:/'
`

func TestRunBuildsTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "agentvault")
	if err := os.WriteFile(bin, []byte(fakeAgentvault), 0o755); err != nil {
		t.Fatal(err)
	}
	// A file a glob would expand to: patterns must reach --allow unexpanded.
	if err := os.WriteFile(filepath.Join(dir, "x.example.test"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("run")
	if err != nil {
		t.Fatal(err)
	}
	tail := []string{"--", "bash", "-eo", "pipefail", "-c"}
	tests := []struct {
		name     string
		env      []string
		wantArgs []string // nil: must be refused with exit 64
	}{
		{"command only", []string{"AV_COMMAND=npm test"},
			append(append([]string{"run"}, tail...), "npm test")},
		{"every input", []string{
			"AV_COMMAND=echo \"$HOME\" 'a b'; claude -p hi",
			"AV_CONFIG=ci/agentvault.yaml",
			"AV_STRICT=true",
			"AV_ALLOW=registry.npmjs.org\n*.example.test  10.0.0.0/8",
			"AV_AUDIT_LOG=audit.jsonl",
		}, append(append([]string{"run", "-c", "ci/agentvault.yaml", "--strict",
			"--allow", "registry.npmjs.org", "--allow", "*.example.test", "--allow", "10.0.0.0/8",
			"--audit-log", "audit.jsonl"}, tail...), "echo \"$HOME\" 'a b'; claude -p hi")},
		{"strict false", []string{"AV_COMMAND=true", "AV_STRICT=false"},
			append(append([]string{"run"}, tail...), "true")},
		{"strict not a boolean", []string{"AV_COMMAND=true", "AV_STRICT=yes"}, nil},
		{"empty command", []string{"AV_COMMAND="}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(script)
			cmd.Dir = dir
			cmd.Env = append(cleanEnv(dir, "AV_BIN="+bin), tc.env...)
			out, err := cmd.Output()
			if tc.wantArgs == nil {
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 64 {
					t.Fatalf("err %v; want exit 64; output %s", err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v: %s", err, out)
			}
			var args []string
			for _, line := range strings.Split(string(out), "\n") {
				if a, ok := strings.CutPrefix(line, "arg:"); ok {
					args = append(args, a)
				}
				// Inputs are the action's plumbing, not the command's environment.
				if strings.HasPrefix(line, "env:AV_") {
					t.Errorf("agentvault inherits %s", line)
				}
			}
			if strings.Join(args, "\x00") != strings.Join(tc.wantArgs, "\x00") {
				t.Fatalf("args\n%q\nwant\n%q", args, tc.wantArgs)
			}
		})
	}
}

// action.yml's inputs reach the scripts through env: only. A ${{ }} expression
// inside a run: script is spliced into the shell text before bash parses it,
// so a command, branch name or PR title could inject code.
func TestActionInputsOnlyThroughEnv(t *testing.T) {
	b, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Inputs map[string]any `yaml:"inputs"`
		Runs   struct {
			Using string `yaml:"using"`
			Steps []struct {
				Run string            `yaml:"run"`
				Env map[string]string `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(b, &action); err != nil {
		t.Fatal(err)
	}
	if action.Runs.Using != "composite" {
		t.Fatalf("runs.using %q; want composite", action.Runs.Using)
	}
	for _, in := range []string{"command", "config", "strict", "allow", "audit-log", "version"} {
		if _, ok := action.Inputs[in]; !ok {
			t.Errorf("input %q missing", in)
		}
	}
	used := map[string]bool{}
	for i, step := range action.Runs.Steps {
		if strings.Contains(step.Run, "${{") {
			t.Errorf("step %d: expression in run: %q", i, step.Run)
		}
		for _, v := range step.Env {
			for in := range action.Inputs {
				if strings.Contains(v, "inputs."+in+" ") || strings.Contains(v, "inputs."+in+"}") {
					used[in] = true
				}
			}
		}
	}
	for in := range action.Inputs {
		if !used[in] {
			t.Errorf("input %q is never passed to a step", in)
		}
	}
}
