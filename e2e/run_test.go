package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

const runTimeout = 60 * time.Second

// avProc is one agentvault process started by the harness.
type avProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	code   int
}

// cleanEnv is all agentvault gets: PATH, HOME (a fresh dir) and extra. The
// machine's SSL_CERT_FILE, CURL_CA_BUNDLE and friends must not leak in.
func cleanEnv(t *testing.T, extra map[string]string) []string {
	env := map[string]string{"PATH": os.Getenv("PATH"), "HOME": t.TempDir()}
	for k, v := range extra {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// startAV starts agentvault in dir ("" = a fresh empty dir, so no stray
// ./agentvault.yaml is found) and kills it after runTimeout.
func startAV(t *testing.T, dir string, env map[string]string, args ...string) *avProc {
	t.Helper()
	needBinary(t)
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	p := &avProc{t: t, cancel: cancel, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, avBin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = cleanEnv(t, env)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	// A child that outlives agentvault may hold the pipes open.
	p.cmd.WaitDelay = 5 * time.Second
	// Its own process group, like a job started from a shell: a test can
	// then signal the group the way a terminal's Ctrl-C does.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting agentvault: %v", err)
	}
	go func() {
		defer close(p.done)
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if ctx.Err() == context.DeadlineExceeded {
			t.Errorf("agentvault %s: killed after %s", strings.Join(args, " "), runTimeout)
		} else if err != nil && !errors.As(err, new(*exec.ExitError)) {
			t.Errorf("agentvault %s: %v", strings.Join(args, " "), err)
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		cancel()
	})
	return p
}

// wait returns stdout, stderr and the exit code (-1 if killed by a signal).
func (p *avProc) wait() (string, string, int) {
	<-p.done
	p.cancel()
	stdout, stderr := p.stdout.String(), p.stderr.String()
	p.scanForSecrets(stdout, stderr)
	p.t.Cleanup(func() {
		if p.t.Failed() {
			p.t.Logf("agentvault %s\nexit %d\n--- stdout\n%s\n--- stderr\n%s",
				strings.Join(p.cmd.Args[1:], " "), p.code, clip(stdout), clip(stderr))
		}
	})
	return stdout, stderr, p.code
}

// scanForSecrets is the check every run gets, whatever its test asserts: no
// secret handed to agentvault in its environment appears in its stdout, its
// stderr or the audit log it was told to write.
func (p *avProc) scanForSecrets(stdout, stderr string) {
	places := map[string]string{"stdout": stdout, "stderr": stderr}
	for i, a := range p.cmd.Args {
		if a == "--audit-log" && i+1 < len(p.cmd.Args) {
			places["audit log"] = readFileOr(p.cmd.Args[i+1], "")
		}
	}
	for _, kv := range p.cmd.Env {
		k, v, _ := strings.Cut(kv, "=")
		if !secretLikeName(k) || len(v) < 8 {
			continue
		}
		for _, form := range secretForms(v) {
			for where, text := range places {
				if strings.Contains(text, form) {
					p.t.Errorf("the value of %s (a secret) appears in agentvault's %s", k, where)
				}
			}
		}
	}
}

func secretLikeName(k string) bool {
	k = strings.ToUpper(k)
	for _, w := range []string{"TOKEN", "SECRET", "KEY", "PASSWORD"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func (p *avProc) signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// signalGroup signals agentvault's whole process group (agentvault and the
// child), as a terminal does on Ctrl-C.
func (p *avProc) signalGroup(sig syscall.Signal) error { return syscall.Kill(-p.cmd.Process.Pid, sig) }

// run runs agentvault to completion with a clean environment plus env.
func run(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return startAV(t, "", env, args...).wait()
}

// runIn is run with a chosen working directory.
func runIn(t *testing.T, dir string, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	return startAV(t, dir, env, args...).wait()
}

func clip(s string) string {
	const max = 6000
	if len(s) > max {
		return s[:max] + fmt.Sprintf("\n... (%d more bytes)", len(s)-max)
	}
	return s
}

// --- sessions: agentvault run against the local servers ---

// childPrelude runs first in every child script: it saves what the child can
// see (environment, argv, the session directory) for the leak checks.
const childPrelude = `env > "$OUT/env.txt"
cat /proc/$$/cmdline > "$OUT/cmdline.bin"
d=$(dirname "${SSL_CERT_FILE:-/nonexistent/x}")
echo "$d" > "$OUT/sessdir.path"
ls -la "$d" > "$OUT/sessdir.ls" 2>&1
for f in "$d"/*; do echo "== $f"; cat "$f"; done > "$OUT/sessdir.cat" 2>&1
`

// sessionOpts describes one `agentvault run`.
type sessionOpts struct {
	config  string            // YAML; "" passes no -c
	env     map[string]string // agentvault's own environment (secrets go here)
	flags   []string          // extra run flags (--strict, --summary ...)
	connect []string          // --connect-to values
	script  string            // sh script for the child, after childPrelude; $OUT is set
	dir     string            // working directory ("" = fresh)
	noAudit bool              // do not pass --audit-log
}

// session is the outcome of one run.
type session struct {
	stdout, stderr string
	code           int
	out            string            // $OUT as seen by the child
	childEnv       map[string]string // parsed $OUT/env.txt
	auditPath      string
	auditRaw       string
	audit          []map[string]any
}

func runSession(t *testing.T, o sessionOpts) *session {
	t.Helper()
	work := t.TempDir()
	s := &session{out: filepath.Join(work, "out"), auditPath: filepath.Join(work, "audit.jsonl")}
	if err := os.Mkdir(s.out, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"run"}
	if o.config != "" {
		args = append(args, "-c", writeFile(t, work, "agentvault.yaml", o.config))
	}
	args = append(args, "--upstream-ca", testCA.PEMPath)
	if !o.noAudit {
		args = append(args, "--audit-log", s.auditPath)
	}
	for _, c := range o.connect {
		args = append(args, "--connect-to", c)
	}
	args = append(args, o.flags...)
	args = append(args, "--", "sh", "-c", childPrelude+o.script)

	env := map[string]string{"OUT": s.out}
	for k, v := range o.env {
		env[k] = v
	}
	s.stdout, s.stderr, s.code = startAV(t, o.dir, env, args...).wait()
	s.childEnv = parseEnvFile(readFileOr(filepath.Join(s.out, "env.txt"), ""))
	s.auditRaw = readFileOr(s.auditPath, "")
	s.audit = parseJSONLines(t, s.auditRaw)
	return s
}

// file returns the content of a file the child wrote under $OUT ("" if absent).
func (s *session) file(name string) string { return readFileOr(filepath.Join(s.out, name), "") }

// placeholder is what the child saw in env var name; it fails if unset.
func (s *session) placeholder(t *testing.T, name string) string {
	t.Helper()
	v := s.childEnv[name]
	if v == "" {
		t.Fatalf("child env has no %s (env dump has %d vars)", name, len(s.childEnv))
	}
	return v
}

// assertNoSecret checks every place the secret must never appear: the
// child's environment, argv, everything it wrote or received under $OUT
// (response bodies included), the session directory's files, and
// agentvault's stdout, stderr and audit log.
func (s *session) assertNoSecret(t *testing.T, secrets ...string) {
	t.Helper()
	places := map[string]string{"agentvault stdout": s.stdout, "agentvault stderr": s.stderr, "audit log": s.auditRaw}
	filepath.WalkDir(s.out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Size() < 8<<20 {
			places["child file "+strings.TrimPrefix(path, s.out)] = readFileOr(path, "")
		}
		return nil
	})
	for _, secret := range secrets {
		if secret == "" {
			t.Fatal("assertNoSecret: empty secret")
		}
		for _, form := range secretForms(secret) {
			for where, text := range places {
				if strings.Contains(text, form) {
					t.Errorf("secret (form %q...) found in %s", form[:min(6, len(form))], where)
				}
			}
		}
	}
}

// assertNoPlaceholder: agentvault's own output and audit never show one.
func (s *session) assertNoPlaceholder(t *testing.T, placeholders ...string) {
	t.Helper()
	for _, p := range placeholders {
		for where, text := range map[string]string{"stdout": s.stdout, "stderr": s.stderr, "audit log": s.auditRaw} {
			if p != "" && strings.Contains(text, p) {
				t.Errorf("placeholder found in agentvault %s", where)
			}
		}
	}
}

// secretForms: raw plus the common encodings a leak could take.
func secretForms(secret string) []string {
	forms := []string{secret, b64(secret), b64("x-access-token:" + secret)}
	for _, esc := range []string{url.QueryEscape(secret), url.PathEscape(secret)} {
		if esc != secret {
			forms = append(forms, esc, lowerHexEscapes(esc))
		}
	}
	return forms
}

// lowerHexEscapes writes %XX escapes with lower-case hex digits, as some
// encoders do.
func lowerHexEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = strings.ToLower(string(b[i+1]))[0], strings.ToLower(string(b[i+2]))[0]
			i += 2
		}
	}
	return string(b)
}

func parseEnvFile(text string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" && !strings.ContainsAny(k, " \t") {
			env[k] = v
		}
	}
	return env
}

func parseJSONLines(t *testing.T, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("audit log line is not JSON: %v: %.200s", err, line)
			continue
		}
		out = append(out, m)
	}
	return out
}

// auditFind returns the records whose fields equal all of want.
func auditFind(recs []map[string]any, want map[string]any) []map[string]any {
	var out []map[string]any
	for _, r := range recs {
		ok := true
		for k, v := range want {
			if fmt.Sprint(r[k]) != fmt.Sprint(v) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFileOr(path, def string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	return string(b)
}
