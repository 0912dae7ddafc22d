package main

import (
	"bytes"
	"strings"
	"testing"
)

// Usage errors must exit 64 before anything is resolved or started, each with
// one line on stderr that names the cause.
func TestRunMainUsageErrors(t *testing.T) {
	// Inside an outer session every run would be refused as nested (also 64),
	// which would hide the cause under test.
	t.Setenv("AGENTVAULT_SESSION", "")

	tests := []struct {
		name string
		args []string
		want string // in the stderr line
	}{
		{"unknown command", []string{"frobnicate"}, "frobnicate"},
		{"unknown flag on run", []string{"run", "--no-such-flag", "--", "true"}, "no-such-flag"},
		{"run without a command", []string{"run"}, "needs a command"},
		{"run without a command after --", []string{"run", "--"}, "needs a command"},
		{"non-loopback listen", []string{"run", "--listen", "0.0.0.0:0", "--", "true"}, "loopback"},
		{"audit without FILE", []string{"audit"}, "FILE"},
		{"audit with two files", []string{"audit", "a.jsonl", "b.jsonl"}, "FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runMain(append([]string{"agentvault"}, tt.args...), &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("runMain(%q) = %d, want %d; stderr: %s", tt.args, code, exitUsage, stderr.String())
			}
			msg := stderr.String()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("stderr %q does not name the cause %q", msg, tt.want)
			}
			if n := strings.Count(strings.TrimSuffix(msg, "\n"), "\n"); n != 0 {
				t.Errorf("stderr has %d lines, want one: %q", n+1, msg)
			}
		})
	}
}
