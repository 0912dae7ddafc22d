//go:build unix

package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// trustForTest records content as trusted for path, failing the test if it
// cannot.
func trustForTest(t *testing.T, o LoadOptions, path, content string) {
	t.Helper()
	if _, err := TrustContent(o, path, []byte(content)); err != nil {
		t.Fatal(err)
	}
}

const trustedConfig = "version: 1\ncredentials:\n  - name: a\n    secret: env:A\n    hosts: [a.example.com]\n"

// trustEnv is a project directory and a home of its own.
type trustEnv struct {
	root, cwd, home string
	o               LoadOptions
}

func newTrustEnv(t *testing.T, env map[string]string) trustEnv {
	t.Helper()
	root := t.TempDir()
	e := trustEnv{root: root, cwd: filepath.Join(root, "proj"), home: filepath.Join(root, "home")}
	for _, d := range []string{e.cwd, e.home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.o = LoadOptions{LookupEnv: envMap(env), Cwd: e.cwd, Home: e.home}
	return e
}

func (e trustEnv) project(t *testing.T, content string) string {
	t.Helper()
	return writeFile(t, filepath.Join(e.cwd, "agentvault.yaml"), content)
}

// TestProjectConfigNeedsTrust: a discovered ./agentvault.yaml loads only
// with the exact content that was trusted; configs the user named do not
// need trust at all.
func TestProjectConfigNeedsTrust(t *testing.T) {
	const other = "version: 1\ncredentials:\n  - name: a\n    secret: env:A\n    hosts: [evil.example.net]\n"
	tests := []struct {
		name  string
		env   map[string]string
		setup func(t *testing.T, e trustEnv) LoadOptions
		want  string // error substring; "" = loads
	}{
		{"never trusted", nil, func(t *testing.T, e trustEnv) LoadOptions {
			e.project(t, trustedConfig)
			return e.o
		}, "project config is not trusted"},
		{"trusted", nil, func(t *testing.T, e trustEnv) LoadOptions {
			trustForTest(t, e.o, e.project(t, trustedConfig), trustedConfig)
			return e.o
		}, ""},
		{"changed since trusted", nil, func(t *testing.T, e trustEnv) LoadOptions {
			p := e.project(t, trustedConfig)
			trustForTest(t, e.o, p, trustedConfig)
			writeFile(t, p, other)
			return e.o
		}, "changed since you trusted it"},
		{"one byte appended", nil, func(t *testing.T, e trustEnv) LoadOptions {
			p := e.project(t, trustedConfig)
			trustForTest(t, e.o, p, trustedConfig)
			writeFile(t, p, trustedConfig+"\n")
			return e.o
		}, "changed since you trusted it"},
		{"same content trusted elsewhere", nil, func(t *testing.T, e trustEnv) LoadOptions {
			trustForTest(t, e.o, writeFile(t, filepath.Join(e.root, "elsewhere", "agentvault.yaml"), trustedConfig), trustedConfig)
			e.project(t, trustedConfig)
			return e.o
		}, "project config is not trusted"},
		{"trusted again after a change", nil, func(t *testing.T, e trustEnv) LoadOptions {
			p := e.project(t, trustedConfig)
			trustForTest(t, e.o, p, trustedConfig)
			writeFile(t, p, other)
			trustForTest(t, e.o, p, other)
			return e.o
		}, ""},
		{"new trust replaces the old content", nil, func(t *testing.T, e trustEnv) LoadOptions {
			p := e.project(t, trustedConfig)
			trustForTest(t, e.o, p, other)
			return e.o
		}, "changed since you trusted it"},
		{"reached through a symlinked directory", nil, func(t *testing.T, e trustEnv) LoadOptions {
			trustForTest(t, e.o, e.project(t, trustedConfig), trustedConfig)
			link := filepath.Join(e.root, "link")
			if err := os.Symlink(e.cwd, link); err != nil {
				t.Fatal(err)
			}
			o := e.o
			o.Cwd = link
			return o
		}, ""},
		{"a symlinked ./agentvault.yaml is trusted by its content", nil, func(t *testing.T, e trustEnv) LoadOptions {
			target := writeFile(t, filepath.Join(e.root, "shared.yaml"), trustedConfig)
			p := filepath.Join(e.cwd, "agentvault.yaml")
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			trustForTest(t, e.o, p, trustedConfig)
			writeFile(t, target, other)
			return e.o
		}, "changed since you trusted it"},
		{"XDG_STATE_HOME holds the record", map[string]string{"XDG_STATE_HOME": "/"}, func(t *testing.T, e trustEnv) LoadOptions {
			o := e.o
			o.LookupEnv = envMap(map[string]string{"XDG_STATE_HOME": filepath.Join(e.root, "state")})
			trustForTest(t, o, e.project(t, trustedConfig), trustedConfig)
			if _, err := os.Stat(filepath.Join(e.root, "state", "agentvault", "trusted")); err != nil {
				t.Fatal(err)
			}
			return o
		}, ""},
		{"trusted under HOME does not count with XDG_STATE_HOME set", nil, func(t *testing.T, e trustEnv) LoadOptions {
			trustForTest(t, e.o, e.project(t, trustedConfig), trustedConfig)
			o := e.o
			o.LookupEnv = envMap(map[string]string{"XDG_STATE_HOME": filepath.Join(e.root, "state")})
			return o
		}, "project config is not trusted"},
		{"a FIFO is refused, not waited on", nil, func(t *testing.T, e trustEnv) LoadOptions {
			if err := syscall.Mkfifo(filepath.Join(e.cwd, "agentvault.yaml"), 0o600); err != nil {
				t.Fatal(err)
			}
			return e.o
		}, "not a regular file"},
		{"--config needs no trust", nil, func(t *testing.T, e trustEnv) LoadOptions {
			o := e.o
			o.Path = e.project(t, trustedConfig)
			return o
		}, ""},
		{"AGENTVAULT_CONFIG needs no trust", nil, func(t *testing.T, e trustEnv) LoadOptions {
			o := e.o
			o.LookupEnv = envMap(map[string]string{"AGENTVAULT_CONFIG": e.project(t, trustedConfig)})
			return o
		}, ""},
		{"the user config dir needs no trust", nil, func(t *testing.T, e trustEnv) LoadOptions {
			writeFile(t, filepath.Join(e.home, ".config", "agentvault", "config.yaml"), trustedConfig)
			return e.o
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTrustEnv(t, tt.env)
			o := tt.setup(t, e)
			cfg, err := loadBounded(t, o)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if cfg.ZeroConfig || len(cfg.Credentials) != 1 {
					t.Errorf("Load = %+v", cfg)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Load error = %v (%T), want a *ConfigError", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), ce.File+": ") || !strings.HasSuffix(ce.File, "agentvault.yaml") {
				t.Errorf("error %q does not name the project config", err)
			}
			if tt.want != "not a regular file" && !strings.Contains(err.Error(), "agentvault trust "+ce.File) {
				t.Errorf("error %q does not say how to trust it", err)
			}
		})
	}
}

// loadBounded fails instead of hanging when Load blocks.
func loadBounded(t *testing.T, o LoadOptions) (*Config, error) {
	t.Helper()
	type result struct {
		cfg *Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		cfg, err := Load(o)
		done <- result{cfg, err}
	}()
	select {
	case r := <-done:
		return r.cfg, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked for 10s")
		return nil, nil
	}
}

// TestTrustStoreFiles: the record is one line per config, 0600 in 0700
// directories, and holds the SHA-256 of the content and the absolute path.
func TestTrustStoreFiles(t *testing.T) {
	e := newTrustEnv(t, nil)
	p := e.project(t, trustedConfig)
	got, err := TrustFile(e.o, p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(trustedConfig))
	if got.Path != p || got.Sum != sum || got.Short() != hex.EncodeToString(sum[:])[:12] {
		t.Errorf("TrustFile = %+v", got)
	}
	record, err := TrustFilePath(e.o)
	if err != nil || record != filepath.Join(e.home, ".local", "state", "agentvault", "trusted") {
		t.Fatalf("TrustFilePath = %q, %v", record, err)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(e.home, ".local"):                        0o700,
		filepath.Join(e.home, ".local", "state"):               0o700,
		filepath.Join(e.home, ".local", "state", "agentvault"): 0o700,
		record: 0o600,
	} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	data, _ := os.ReadFile(record)
	if !strings.Contains(string(data), hex.EncodeToString(sum[:])+" "+fmt.Sprintf("%q", p)+"\n") {
		t.Errorf("record lacks the entry:\n%s", data)
	}
	// A second trust of the same path replaces its line.
	if _, err := TrustContent(e.o, p, []byte("version: 1\n")); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(record)
	if n := strings.Count(string(data), fmt.Sprintf("%q", p)); n != 1 {
		t.Errorf("%d lines for one path:\n%s", n, data)
	}
	entries, _ := os.ReadDir(filepath.Dir(record))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the record: %v", entries)
	}
}

// TestTrustFileRejectsInvalidConfig: trust validates, and a config that does
// not parse is not recorded.
func TestTrustFileRejectsInvalidConfig(t *testing.T) {
	e := newTrustEnv(t, nil)
	p := e.project(t, "version: 1\nbogus: 1\n")
	_, err := TrustFile(e.o, p)
	assertConfigError(t, err, p+":2:1: config: unknown key \"bogus\" ...")
	record, _ := TrustFilePath(e.o)
	if _, err := os.Lstat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an invalid config left a record (%v)", err)
	}
}

// TestTrustStoreRefusesPlantedPaths: whatever is planted in the state
// directory, trusting never writes through it and loading never accepts it.
func TestTrustStoreRefusesPlantedPaths(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, home, victim string)
		want  string
	}{
		{"record is a symlink", func(t *testing.T, home, victim string) {
			mkdirs(t, filepath.Join(home, ".local", "state", "agentvault"))
			symlink(t, victim, filepath.Join(home, ".local", "state", "agentvault", "trusted"))
		}, "symbolic link"},
		{"record is a dangling symlink", func(t *testing.T, home, victim string) {
			mkdirs(t, filepath.Join(home, ".local", "state", "agentvault"))
			symlink(t, victim+".new", filepath.Join(home, ".local", "state", "agentvault", "trusted"))
		}, "symbolic link"},
		{"agentvault dir is a symlink", func(t *testing.T, home, victim string) {
			mkdirs(t, filepath.Join(home, ".local", "state"))
			symlink(t, filepath.Dir(victim), filepath.Join(home, ".local", "state", "agentvault"))
		}, "symbolic link"},
		{"state dir is a symlink", func(t *testing.T, home, victim string) {
			mkdirs(t, filepath.Join(filepath.Dir(victim), "agentvault"))
			mkdirs(t, filepath.Join(home, ".local"))
			symlink(t, filepath.Dir(victim), filepath.Join(home, ".local", "state"))
		}, "symbolic link"},
		{"record writable by others", func(t *testing.T, home, _ string) {
			p := filepath.Join(home, ".local", "state", "agentvault", "trusted")
			mkdirs(t, filepath.Dir(p))
			writeFile(t, p, trustRecordHeader)
			chmod(t, p, 0o622)
		}, "writable by others"},
		{"agentvault dir writable by others", func(t *testing.T, home, _ string) {
			p := filepath.Join(home, ".local", "state", "agentvault")
			mkdirs(t, p)
			chmod(t, p, 0o777)
		}, "writable by others"},
		{"record is a FIFO", func(t *testing.T, home, _ string) {
			p := filepath.Join(home, ".local", "state", "agentvault", "trusted")
			mkdirs(t, filepath.Dir(p))
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"record is damaged", func(t *testing.T, home, _ string) {
			p := filepath.Join(home, ".local", "state", "agentvault", "trusted")
			mkdirs(t, filepath.Dir(p))
			writeFile(t, p, "not a record\n")
		}, "line 1 is not"},
		{"record owned by another user", func(t *testing.T, home, _ string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			p := filepath.Join(home, ".local", "state", "agentvault", "trusted")
			mkdirs(t, filepath.Dir(p))
			writeFile(t, p, trustRecordHeader)
			if err := os.Chown(p, 12345, 12345); err != nil {
				t.Fatal(err)
			}
		}, "not by you"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTrustEnv(t, nil)
			victim := writeFile(t, filepath.Join(e.root, "elsewhere", "bashrc"), "keep me\n")
			tt.plant(t, e.home, victim)
			p := e.project(t, trustedConfig)

			_, err := TrustContent(e.o, p, []byte(trustedConfig))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("TrustContent error = %v, want one saying %q", err, tt.want)
			}
			_, err = loadBounded(t, e.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("Load error = %v, want one naming %s and saying %q", err, p, tt.want)
			}
			if got, _ := os.ReadFile(victim); string(got) != "keep me\n" {
				t.Errorf("the planted target was written: %q", got)
			}
			filepath.WalkDir(filepath.Dir(victim), func(p string, d os.DirEntry, err error) error {
				if err == nil && strings.Contains(d.Name(), "trusted") {
					t.Errorf("a record was written through the plant: %s", p)
				}
				return nil
			})
		})
	}
}

// TestTrustConcurrent: trusting several configs at once keeps every entry.
func TestTrustConcurrent(t *testing.T) {
	e := newTrustEnv(t, nil)
	const n = 8
	var wg sync.WaitGroup
	paths := make([]string, n)
	for i := range paths {
		paths[i] = writeFile(t, filepath.Join(e.root, fmt.Sprintf("p%d", i), "agentvault.yaml"), trustedConfig)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := TrustContent(e.o, paths[i], []byte(trustedConfig)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, p := range paths {
		o := e.o
		o.Cwd = filepath.Dir(p)
		if _, err := Load(o); err != nil {
			t.Errorf("entry lost: %v", err)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/home/u/proj/agentvault.yaml": "/home/u/proj/agentvault.yaml",
		"/home/u/my proj/a.yaml":       "'/home/u/my proj/a.yaml'",
		"/tmp/it's/a.yaml":             `'/tmp/it'\''s/a.yaml'`,
		"/tmp/$(touch x)/a.yaml":       "'/tmp/$(touch x)/a.yaml'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func mkdirs(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}
