package session

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentvault/agentvault/backends"
	"github.com/agentvault/agentvault/internal/testsupport"
	"github.com/agentvault/agentvault/launcher"
)

const (
	runSecret  = "tok_realsecretvalue0123456789"
	otherValue = "unprotected-value-0123456789"
	runConfig  = `version: 1
credentials:
  - name: api
    secret: env:API_TOKEN
    hosts: [api.example.test]
    env: [API_TOKEN]
    inject: bearer
`
)

// runFixture is one in-process session: a named config, a fake env backend
// holding runSecret, and a shell command that writes what it sees to a file.
type runFixture struct {
	dir     string
	backend *fakeBackend
	stderr  bytes.Buffer
	env     map[string]string // what LookupEnv reads; Environ is built from it at set-up
	opts    Options
}

func newRunFixture(t *testing.T, script string) *runFixture {
	t.Helper()
	f := &runFixture{dir: t.TempDir()}
	cfgPath := filepath.Join(f.dir, "av.yaml")
	if err := os.WriteFile(cfgPath, []byte(runConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// The session's trusted roots come from the fixture, not the machine.
	tca, err := testsupport.NewCA("run-test roots")
	if err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(f.dir, "roots.pem")
	if err := os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tca.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	runtime := filepath.Join(f.dir, "run")
	if err := os.Mkdir(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	f.backend = &fakeBackend{typ: "env", consumed: []string{"API_TOKEN"}, values: map[string]backends.Secret{
		"API_TOKEN": {Value: runSecret},
	}}
	opener := &fakeOpener{backends: map[string]*fakeBackend{"env": f.backend}}
	f.env = map[string]string{
		"PATH":            "/usr/bin:/bin",
		"HOME":            f.dir,
		"OUT":             filepath.Join(f.dir, "child.env"),
		"API_TOKEN":       runSecret, // what the env backend reads; the child must not get it
		"SSL_CERT_FILE":   roots,
		"XDG_RUNTIME_DIR": runtime,
	}
	var environ []string
	for k, v := range f.env {
		environ = append(environ, k+"="+v)
	}
	f.opts = Options{
		Argv:       []string{"sh", "-c", script},
		ConfigPath: cfgPath,
		Summary:    "json",
		Listen:     "127.0.0.1:0",
		Environ:    environ,
		LookupEnv:  envMap(f.env),
		Cwd:        f.dir,
		Home:       f.dir,
		Open:       opener.open,
		Stderr:     &f.stderr,
	}
	return f
}

// childEnv is what the command wrote with `env > "$OUT"`, or nil if it never ran.
func (f *runFixture) childEnv(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "child.env"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

// TestRun runs whole sessions in-process and checks what a hostile command
// and the user would see: the exit status, the child's environment (a
// placeholder, never the secret), the summary, and that a failure before the
// command starts resolves nothing it need not and prints no summary.
func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		prepare func(*runFixture)
		// want: the session's status, or the failure kind and, for a start
		// failure, the shell's status.
		status    int
		kind      Failure
		startCode int
		childRuns bool
		resolved  bool // the backend was asked for the secret
		summary   bool
		warning   string // a summary warning that must name this variable
		stepFile  bool   // the summary is also appended to $GITHUB_STEP_SUMMARY
		errHas    string // the failure's message says this
	}{
		{name: "status passes through", script: `env > "$OUT"; exit 3`, status: 3, childRuns: true, resolved: true, summary: true},
		{name: "success", script: `env > "$OUT"`, status: 0, childRuns: true, resolved: true, summary: true},
		{name: "command not found leases nothing", script: "", prepare: func(f *runFixture) {
			f.opts.Argv = []string{"no-such-command-agentvault-test"}
		}, kind: FailStart, startCode: 127},
		{name: "unresolvable credential", script: `env > "$OUT"`, prepare: func(f *runFixture) {
			f.backend.errs = map[string]error{"API_TOKEN": errors.New("backend down")}
		}, kind: FailUnavailable, resolved: true},
		{name: "unreadable audit log", script: `env > "$OUT"`, prepare: func(f *runFixture) {
			f.opts.AuditLog = filepath.Join(f.dir, "missing-dir", "audit.jsonl")
		}, kind: FailConfig, resolved: true},
		{name: "unprotected variable named, never its value", script: `env > "$OUT"`, prepare: func(f *runFixture) {
			f.opts.Environ = append(f.opts.Environ, "OTHER_API_KEY="+otherValue)
		}, childRuns: true, resolved: true, summary: true, warning: "OTHER_API_KEY"},
		{name: "zero-config --strict refuses an unprotected credential", script: `env > "$OUT"`, prepare: func(f *runFixture) {
			f.opts.ConfigPath = ""
			f.opts.Strict = true
		}, kind: FailConfig, errHas: "refusing to start: credential-like variables would reach the command unprotected: API_TOKEN;"},
		{name: "step summary", script: `env > "$OUT"; exit 5`, prepare: func(f *runFixture) {
			f.env["GITHUB_STEP_SUMMARY"] = filepath.Join(f.dir, "step.md")
		}, status: 5, childRuns: true, resolved: true, summary: true, stepFile: true},
		{name: "quiet prints nothing", script: `env > "$OUT"; exit 4`, prepare: func(f *runFixture) {
			f.opts.Quiet = true
		}, status: 4, childRuns: true, resolved: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRunFixture(t, tt.script)
			if tt.prepare != nil {
				tt.prepare(f)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			status, err := Run(ctx, f.opts)
			stderr := f.stderr.String()
			for _, v := range []string{runSecret, otherValue} {
				if strings.Contains(stderr, v) {
					t.Errorf("stderr holds the value %q:\n%s", v, stderr)
				}
			}

			if tt.kind == 0 {
				if err != nil || status != tt.status {
					t.Fatalf("Run = %d, %v; want %d, nil; stderr:\n%s", status, err, tt.status, stderr)
				}
			} else {
				var re *RunError
				if !errors.As(err, &re) || re.Kind != tt.kind {
					t.Fatalf("Run error = %v (%T), want a RunError of kind %d", err, err, tt.kind)
				}
				var se *launcher.StartError
				if tt.startCode != 0 && (!errors.As(err, &se) || se.Code != tt.startCode) {
					t.Errorf("Run error = %v, want a start error with status %d", err, tt.startCode)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("Run error = %q, want it to say %q", err, tt.errHas)
				}
				if strings.Contains(err.Error(), runSecret) {
					t.Errorf("error holds the secret: %v", err)
				}
			}

			f.backend.mu.Lock()
			resolved := len(f.backend.resolved) > 0
			closed := f.backend.closed
			f.backend.mu.Unlock()
			if resolved != tt.resolved {
				t.Errorf("backend resolved = %v, want %v", resolved, tt.resolved)
			}
			if resolved && closed != 1 {
				t.Errorf("backend closed %d times, want once", closed)
			}

			env := f.childEnv(t)
			if (env != nil) != tt.childRuns {
				t.Fatalf("child ran = %v, want %v", env != nil, tt.childRuns)
			}
			if env != nil {
				ph := env["API_TOKEN"]
				if ph == "" || ph == runSecret || strings.Contains(ph, runSecret) {
					t.Errorf("child API_TOKEN = %q, want a placeholder", ph)
				}
				for k, v := range env {
					if strings.Contains(v, runSecret) {
						t.Errorf("child %s holds the secret", k)
					}
				}
				if !strings.HasPrefix(env["AGENTVAULT_SESSION"], "av-") || !strings.Contains(env["HTTPS_PROXY"], "127.0.0.1:") {
					t.Errorf("child session/proxy variables: AGENTVAULT_SESSION=%q HTTPS_PROXY=%q", env["AGENTVAULT_SESSION"], env["HTTPS_PROXY"])
				}
				if strings.Contains(stderr, ph) {
					t.Errorf("stderr holds the placeholder %q:\n%s", ph, stderr)
				}
			}

			i := strings.Index(stderr, "{")
			if !tt.summary {
				if i >= 0 && tt.kind == 0 {
					t.Errorf("a summary was printed:\n%s", stderr)
				}
				if tt.kind != 0 && strings.Contains(stderr, `"exit_status"`) {
					t.Errorf("a failed session printed a summary:\n%s", stderr)
				}
				return
			}
			if i < 0 {
				t.Fatalf("no JSON summary on stderr:\n%s", stderr)
			}
			var s struct {
				Session    string   `json:"session"`
				Command    []string `json:"command"`
				ExitStatus *int     `json:"exit_status"`
				Warnings   []string `json:"warnings"`
			}
			if err := json.Unmarshal([]byte(stderr[i:]), &s); err != nil {
				t.Fatalf("summary: %v\n%s", err, stderr)
			}
			if s.ExitStatus == nil || *s.ExitStatus != tt.status {
				t.Errorf("summary exit_status = %v, want %d", s.ExitStatus, tt.status)
			}
			if s.Session != env["AGENTVAULT_SESSION"] || len(s.Command) != 3 || s.Command[0] != "sh" {
				t.Errorf("summary session %q command %q; child session %q", s.Session, s.Command, env["AGENTVAULT_SESSION"])
			}
			if got := strings.Join(s.Warnings, "\n"); tt.warning != "" && !strings.Contains(got, tt.warning) {
				t.Errorf("summary warnings %q do not name %s", s.Warnings, tt.warning)
			}
			step, err := os.ReadFile(filepath.Join(f.dir, "step.md"))
			if tt.stepFile != (err == nil) {
				t.Fatalf("step summary written = %v (%v), want %v", err == nil, err, tt.stepFile)
			}
			if tt.stepFile && (!strings.Contains(string(step), s.Session) || strings.Contains(string(step), runSecret)) {
				t.Errorf("step summary does not name session %s, or holds the secret:\n%s", s.Session, step)
			}
		})
	}
}
