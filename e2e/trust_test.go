package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plantedProject is what a cloned repository or the agent itself leaves in
// a directory: an agentvault.yaml whose exec backend runs a command of the
// planter's choosing. The helper leaves a marker when it runs.
type plantedProject struct {
	dir, config, marker, childMarker string
	home                             string // agentvault's HOME, the same for every step
}

func newPlantedProject(t *testing.T) *plantedProject {
	t.Helper()
	helperDir := t.TempDir()
	p := &plantedProject{
		dir:         t.TempDir(),
		home:        t.TempDir(),
		marker:      filepath.Join(helperDir, "helper-ran"),
		childMarker: filepath.Join(helperDir, "child-ran"),
	}
	helper := writeFile(t, helperDir, "helper.sh", fmt.Sprintf("touch %q\nprintf '%%s\\n' %q\n", p.marker, newSecret(t, "planted")))
	p.config = writeFile(t, p.dir, "agentvault.yaml", fmt.Sprintf(`version: 1
backends:
  planted:
    type: exec
    command: [sh, %q]
credentials:
  - name: api
    secret: planted:ref
    hosts: [api.example.test]
    inject: bearer
    env: [API_TOKEN]
guard:
  leak: off
`, helper))
	return p
}

func (p *plantedProject) env(extra map[string]string) map[string]string {
	env := map[string]string{"HOME": p.home}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// av runs agentvault in the project directory; "run" gets a child that
// leaves its own marker.
func (p *plantedProject) av(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	if len(args) > 0 && args[0] == "run" {
		args = append(args, "--", "sh", "-c", "touch "+p.childMarker)
	}
	return runIn(t, p.dir, p.env(env), args...)
}

// ran reports (and clears) whether the helper and the child ran.
func (p *plantedProject) ran() (helper, child bool) {
	_, herr := os.Stat(p.marker)
	_, cerr := os.Stat(p.childMarker)
	os.Remove(p.marker)
	os.Remove(p.childMarker)
	return herr == nil, cerr == nil
}

// assertRefused: exit 78 with one line naming the file and the command that
// trusts it, and nothing the config names ran, nor the child.
func (p *plantedProject) assertRefused(t *testing.T, what, stderr string, code int, want string) {
	t.Helper()
	if code != 78 {
		t.Errorf("%s: exit %d, want 78", what, code)
	}
	if !strings.Contains(stderr, p.config) || !strings.Contains(stderr, "agentvault trust "+p.config) || !strings.Contains(stderr, want) {
		t.Errorf("%s: stderr does not name %s, say %q and how to trust it:\n%s", what, p.config, want, stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
		t.Errorf("%s: %d lines on stderr, want one:\n%s", what, n+1, stderr)
	}
	if helper, child := p.ran(); helper || child {
		t.Errorf("%s: the exec helper ran: %v, the child ran: %v", what, helper, child)
	}
}

// TestProjectConfigTrust: a planted ./agentvault.yaml is refused by run and
// check before its exec backend or the command runs, works once trusted,
// and is refused again after any edit.
func TestProjectConfigTrust(t *testing.T) {
	needBinary(t)
	p := newPlantedProject(t)

	for _, cmd := range []string{"run", "check"} {
		_, stderr, code := p.av(t, nil, cmd)
		p.assertRefused(t, cmd+" before trust", stderr, code, "not trusted")
	}

	stdout, stderr, code := p.av(t, nil, "trust")
	if code != 0 || !strings.Contains(stdout, "trusted "+p.config+" (sha256 ") {
		t.Fatalf("trust: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if fi, err := os.Stat(filepath.Join(p.home, ".local", "state", "agentvault", "trusted")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("trust record: %v, %v; want a 0600 file under ~/.local/state/agentvault", fi, err)
	}
	if helper, _ := p.ran(); helper {
		t.Error("trust ran the exec helper")
	}

	if _, _, code := p.av(t, nil, "check"); code != 0 {
		t.Errorf("check after trust: exit %d, want 0", code)
	}
	if helper, _ := p.ran(); !helper {
		t.Error("check after trust did not resolve through the helper")
	}
	if _, _, code := p.av(t, nil, "run"); code != 0 {
		t.Errorf("run after trust: exit %d, want 0", code)
	}
	if helper, child := p.ran(); !helper || !child {
		t.Errorf("run after trust: helper ran %v, child ran %v", helper, child)
	}

	// An edit, even a comment, needs a new review.
	if err := os.WriteFile(p.config, []byte(readFileOr(p.config, "")+"# harmless?\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"run", "check"} {
		_, stderr, code := p.av(t, nil, cmd)
		p.assertRefused(t, cmd+" after an edit", stderr, code, "changed since you trusted it")
	}

	// A config that does not parse is not trusted.
	if err := os.WriteFile(p.config, []byte(readFileOr(p.config, "")+"bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := p.av(t, nil, "trust"); code != 78 || !strings.Contains(stderr, "bogus") {
		t.Errorf("trust of an invalid config: exit %d, stderr %q; want 78 naming the problem", code, stderr)
	}
	_, stderr, code = p.av(t, nil, "run")
	p.assertRefused(t, "run after a refused trust", stderr, code, "changed since you trusted it")

	// The agent cannot approve its own config from inside a session.
	p2 := newPlantedProject(t)
	if _, stderr, code := p2.av(t, map[string]string{"AGENTVAULT_SESSION": "av-12345678"}, "trust"); code != 64 || !strings.Contains(stderr, "inside an agentvault session") {
		t.Errorf("trust inside a session: exit %d, want 64: %s", code, stderr)
	}
	_, stderr, code = p2.av(t, nil, "run")
	p2.assertRefused(t, "run after a trust from inside a session", stderr, code, "not trusted")

	// Trust is per user: another HOME has trusted nothing.
	if err := os.WriteFile(p.config, []byte(strings.TrimSuffix(readFileOr(p.config, ""), "bogus: 1\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, code := p.av(t, nil, "trust"); code != 0 {
		t.Fatalf("trust: exit %d", code)
	}
	_, stderr, code = p.av(t, map[string]string{"HOME": t.TempDir()}, "run")
	p.assertRefused(t, "run as a user who trusted nothing", stderr, code, "not trusted")
}

// TestNamedConfigsNeedNoTrust: -c, $AGENTVAULT_CONFIG and the user's config
// dir are the user's own choice: used without trust (the helper runs).
func TestNamedConfigsNeedNoTrust(t *testing.T) {
	needBinary(t)
	cases := []struct {
		name  string
		setup func(t *testing.T, p *plantedProject) (dir string, env map[string]string, args []string)
	}{
		{"-c", func(t *testing.T, p *plantedProject) (string, map[string]string, []string) {
			return p.dir, nil, []string{"-c", p.config}
		}},
		{"AGENTVAULT_CONFIG", func(t *testing.T, p *plantedProject) (string, map[string]string, []string) {
			return p.dir, map[string]string{"AGENTVAULT_CONFIG": p.config}, nil
		}},
		{"home config dir", func(t *testing.T, p *plantedProject) (string, map[string]string, []string) {
			dir := filepath.Join(p.home, ".config", "agentvault")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, "config.yaml", readFileOr(p.config, ""))
			return t.TempDir(), nil, nil
		}},
		{"XDG_CONFIG_HOME", func(t *testing.T, p *plantedProject) (string, map[string]string, []string) {
			xdg := t.TempDir()
			if err := os.MkdirAll(filepath.Join(xdg, "agentvault"), 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(xdg, "agentvault"), "config.yaml", readFileOr(p.config, ""))
			return t.TempDir(), map[string]string{"XDG_CONFIG_HOME": xdg}, nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPlantedProject(t)
			dir, env, flags := c.setup(t, p)
			for _, cmd := range []string{"check", "run"} {
				args := append([]string{cmd}, flags...)
				if cmd == "run" {
					args = append(args, "--", "sh", "-c", "touch "+p.childMarker)
				}
				_, stderr, code := runIn(t, dir, p.env(env), args...)
				if code != 0 {
					t.Errorf("%s: exit %d, want 0: %s", cmd, code, stderr)
				}
				if helper, child := p.ran(); !helper || child != (cmd == "run") {
					t.Errorf("%s: helper ran %v, child ran %v", cmd, helper, child)
				}
			}
		})
	}
}

// TestInitOutputIsTrusted: what init writes is used at once; a later edit
// is not.
func TestInitOutputIsTrusted(t *testing.T) {
	needBinary(t)
	dir, home := t.TempDir(), t.TempDir()
	env := map[string]string{"HOME": home}
	stdout, stderr, code := runIn(t, dir, env, "init")
	if code != 0 || !strings.Contains(stdout, "trusted") {
		t.Fatalf("init: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, stderr, code := runIn(t, dir, env, "check"); code != 0 {
		t.Errorf("check after init: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runIn(t, dir, env, "run", "--", "true"); code != 0 {
		t.Errorf("run after init: exit %d: %s", code, stderr)
	}
	cfg := filepath.Join(dir, "agentvault.yaml")
	if err := os.WriteFile(cfg, []byte(readFileOr(cfg, "")+"# edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runIn(t, dir, env, "run", "--", "true"); code != 78 || !strings.Contains(stderr, "agentvault trust") {
		t.Errorf("run after editing init's output: exit %d, want 78: %s", code, stderr)
	}
}

// TestTrustRecordNotWrittenThroughSymlinks: a symlink planted in the state
// directory is refused, by trust and by run, and nothing is written where it
// points.
func TestTrustRecordNotWrittenThroughSymlinks(t *testing.T) {
	needBinary(t)
	cases := []struct {
		name  string
		plant func(t *testing.T, state, victimDir string)
	}{
		{"record", func(t *testing.T, state, victimDir string) {
			mkdir(t, filepath.Join(state, "agentvault"))
			if err := os.Symlink(filepath.Join(victimDir, "bashrc"), filepath.Join(state, "agentvault", "trusted")); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", func(t *testing.T, state, victimDir string) {
			mkdir(t, state)
			if err := os.Symlink(victimDir, filepath.Join(state, "agentvault")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPlantedProject(t)
			victimDir := t.TempDir()
			victim := writeFile(t, victimDir, "bashrc", "keep me\n")
			c.plant(t, filepath.Join(p.home, ".local", "state"), victimDir)

			_, stderr, code := p.av(t, nil, "trust")
			if code != 78 || !strings.Contains(stderr, "symbolic link") {
				t.Errorf("trust: exit %d, want 78 saying symbolic link: %s", code, stderr)
			}
			_, stderr, code = p.av(t, nil, "run")
			if code != 78 || !strings.Contains(stderr, p.config) {
				t.Errorf("run: exit %d, want 78 naming the config: %s", code, stderr)
			}
			if helper, child := p.ran(); helper || child {
				t.Errorf("helper ran %v, child ran %v", helper, child)
			}
			if got := readFileOr(victim, ""); got != "keep me\n" {
				t.Errorf("the symlink's target was written: %q", got)
			}
			if entries, _ := os.ReadDir(victimDir); len(entries) != 1 {
				t.Errorf("files created where the symlink points: %v", entries)
			}
		})
	}
}

// TestTrustXDGStateHome: an absolute XDG_STATE_HOME holds the record.
func TestTrustXDGStateHome(t *testing.T) {
	needBinary(t)
	p := newPlantedProject(t)
	state := t.TempDir()
	env := map[string]string{"XDG_STATE_HOME": state}
	if _, stderr, code := p.av(t, env, "trust"); code != 0 {
		t.Fatalf("trust: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(state, "agentvault", "trusted")); err != nil {
		t.Errorf("no record under XDG_STATE_HOME: %v", err)
	}
	if _, stderr, code := p.av(t, env, "run"); code != 0 {
		t.Errorf("run: exit %d: %s", code, stderr)
	}
	if helper, child := p.ran(); !helper || !child {
		t.Errorf("run: helper ran %v, child ran %v", helper, child)
	}
	// The record under XDG_STATE_HOME is not consulted without it.
	_, stderr, code := p.av(t, nil, "run")
	p.assertRefused(t, "run without XDG_STATE_HOME", stderr, code, "not trusted")
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
}
