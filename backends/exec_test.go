package backends

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shell builds an exec backend config running script with sh; the reference
// arrives as $1 because the backend appends it as the last argument.
func shell(script string, timeout string) string {
	doc := fmt.Sprintf("command: [sh, -c, %q, sh]", script)
	if timeout != "" {
		doc += "\ntimeout: " + timeout
	}
	return doc
}

func TestExecResolve(t *testing.T) {
	const secret = "exec-SECRET-789"
	tests := []struct {
		name, doc, ref, want, errHas string
		maxDur                       time.Duration
	}{
		{"ref is last arg", shell(`printf '%s\n' "got:$1"`, ""), "op://vault/item", "got:op://vault/item", "", 0},
		{"ref not shell-expanded", shell(`printf '%s' "$1"`, ""), "$(echo hi);`x`", "$(echo hi);`x`", "", 0},
		{"number of args", shell(`printf '%s' "$#"`, ""), "a b c", "1", "", 0},
		{"lf stripped", shell(`printf '%s\n' `+secret, ""), "x", secret, "", 0},
		{"crlf stripped", shell(`printf '%s\r\n' `+secret, ""), "x", secret, "", 0},
		{"only one lf", shell(`printf '%s\n\n' `+secret, ""), "x", secret + "\n", "", 0},
		{"internal newlines kept", shell(`printf 'a\nb\n'`, ""), "x", "a\nb", "", 0},
		{"stdin is empty", shell(`cat; printf ok`, "5s"), "x", "ok", "", 0},
		{"json field", shell(`printf '{"%s":"%s"}\n' "$1" `+secret, ""), "tok#tok", secret, "", 0},
		{"json field missing", shell(`printf '{"a":"%s"}' `+secret, ""), "x#b", "", `field "b" not found`, 0},
		{"non-zero exit", shell(`printf '%s' `+secret+`; echo "not signed in" >&2; exit 3`, ""), "x", "",
			`command "sh" failed (exit status 3): not signed in`, 0},
		{"stderr masks partial stdout", shell(`printf '%s' `+secret+`; echo "bad `+secret+`" >&2; exit 1`, ""), "x", "",
			"bad [redacted]", 0},
		{"empty output", shell(`true`, ""), "x", "", "printed nothing", 0},
		{"only newline", shell(`echo`, ""), "x", "", "printed nothing", 0},
		{"timeout", shell(`printf '%s' `+secret+`; sleep 10`, "200ms"), "x", "", "timed out after 200ms", 5 * time.Second},
		{"not found", "command: [agentvault-no-such-command-xyz]", "x", "", `"agentvault-no-such-command-xyz" not found`, 0},
		{"killed by signal", shell(`kill -9 $$`, ""), "x", "", "signal: killed", 0},
		{"output too large", shell(`head -c 2000000 /dev/zero | tr '\0' a`, "10s"), "x", "", "more than 1 MiB", 0},
		{"empty ref", shell(`printf ok`, ""), "", "", "empty reference", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(Options{Name: "op", Type: "exec", Decode: yamlDecode(t, tt.doc), LookupEnv: noEnv})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			s, err := b.Resolve(context.Background(), tt.ref)
			if tt.maxDur > 0 && time.Since(start) > tt.maxDur {
				t.Errorf("took %v, want under %v", time.Since(start), tt.maxDur)
			}
			if tt.errHas == "" {
				if err != nil || s.Value != tt.want {
					t.Fatalf("got %q, %v; want %q", s.Value, err, tt.want)
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
		})
	}
}

func TestExecStderrTruncated(t *testing.T) {
	b, err := Open(Options{Type: "exec", Decode: yamlDecode(t, shell(`head -c 5000 /dev/zero | tr '\0' e >&2; exit 1`, ""))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Resolve(context.Background(), "x")
	if err == nil {
		t.Fatal("want an error")
	}
	if n := strings.Count(err.Error(), "e"); n < 200 || n > 210 {
		t.Errorf("error carries %d bytes of stderr, want about 200: %q", n, err)
	}
}

func TestExecDefaultTimeout(t *testing.T) {
	b, err := Open(Options{Type: "exec", Decode: yamlDecode(t, "command: [echo]")})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.(*execBackend).timeout; got != 30*time.Second {
		t.Errorf("default timeout = %v, want 30s", got)
	}
}

func TestExecCallerCancel(t *testing.T) {
	b, err := Open(Options{Type: "exec", Decode: yamlDecode(t, shell(`sleep 10`, "1m"))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = b.Resolve(ctx, "x")
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out after 1m") {
		t.Fatalf("got %v, want the caller's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

func TestExecAbsolutePath(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "get-secret")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf 'v-%s\\n' \"$1\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := Open(Options{Type: "exec", Decode: yamlDecode(t, fmt.Sprintf("command: [%q]", script))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Resolve(context.Background(), "ref")
	if err != nil || s.Value != "v-ref" {
		t.Fatalf("got %q, %v", s.Value, err)
	}
}
