package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFindOrder(t *testing.T) {
	root := t.TempDir()
	cwd := filepath.Join(root, "work")
	home := filepath.Join(root, "home")
	xdg := filepath.Join(root, "xdg")
	explicit := writeFile(t, filepath.Join(root, "explicit.yaml"), "")
	fromEnv := writeFile(t, filepath.Join(root, "env.yaml"), "")
	local := filepath.Join(cwd, "agentvault.yaml")
	xdgFile := filepath.Join(xdg, "agentvault", "config.yaml")
	homeFile := filepath.Join(home, ".config", "agentvault", "config.yaml")
	if err := os.MkdirAll(cwd, 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		path  string
		env   map[string]string
		files []string // created for this case, removed after
		want  string
	}{
		{"explicit wins", explicit, map[string]string{"AGENTVAULT_CONFIG": fromEnv}, []string{local, xdgFile, homeFile}, explicit},
		{"explicit relative to cwd", "../explicit.yaml", nil, nil, filepath.Join(cwd, "../explicit.yaml")},
		{"env var next", "", map[string]string{"AGENTVAULT_CONFIG": fromEnv, "XDG_CONFIG_HOME": xdg}, []string{local, xdgFile}, fromEnv},
		{"empty env var ignored", "", map[string]string{"AGENTVAULT_CONFIG": ""}, []string{local}, local},
		{"local file", "", map[string]string{"XDG_CONFIG_HOME": xdg}, []string{local, xdgFile, homeFile}, local},
		{"xdg", "", map[string]string{"XDG_CONFIG_HOME": xdg}, []string{xdgFile, homeFile}, xdgFile},
		{"xdg set replaces ~/.config", "", map[string]string{"XDG_CONFIG_HOME": xdg}, []string{homeFile}, ""},
		{"relative xdg ignored", "", map[string]string{"XDG_CONFIG_HOME": "rel"}, []string{homeFile}, homeFile},
		{"home", "", nil, []string{homeFile}, homeFile},
		{"none: zero-config", "", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range tt.files {
				writeFile(t, f, "version: 1\n")
			}
			defer func() {
				for _, f := range tt.files {
					os.Remove(f)
				}
			}()
			got, err := Find(LoadOptions{Path: tt.path, LookupEnv: envMap(tt.env), Cwd: cwd, Home: home})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Find = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFindErrors(t *testing.T) {
	root := t.TempDir()
	missing := filepath.Join(root, "missing.yaml")
	tests := []struct {
		name string
		o    LoadOptions
		want string
	}{
		{"explicit missing", LoadOptions{Path: missing}, missing + ": config file not found (from --config)"},
		{"env missing", LoadOptions{LookupEnv: envMap(map[string]string{"AGENTVAULT_CONFIG": missing})}, missing + ": config file not found (from $AGENTVAULT_CONFIG)"},
		{"explicit is a directory", LoadOptions{Path: root}, root + ": is a directory, not a config file"},
		{"local is a directory", LoadOptions{Cwd: func() string {
			d := filepath.Join(root, "cwd")
			os.MkdirAll(filepath.Join(d, "agentvault.yaml"), 0o700)
			return d
		}()}, filepath.Join(root, "cwd", "agentvault.yaml") + ": is a directory, not a config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.o.LookupEnv == nil {
				tt.o.LookupEnv = envMap(nil)
			}
			if tt.o.Home == "" {
				tt.o.Home = filepath.Join(root, "nohome")
			}
			if tt.o.Cwd == "" {
				tt.o.Cwd = filepath.Join(root, "nocwd")
			}
			_, err := Find(tt.o)
			assertConfigError(t, err, tt.want)
			if _, err := Load(tt.o); err == nil || err.Error() != tt.want {
				t.Errorf("Load error = %v", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	root := t.TempDir()
	env := envMap(map[string]string{"OPENAI_API_KEY": "sk-test"})

	cfg, err := Load(LoadOptions{LookupEnv: env, Cwd: root, Home: root})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ZeroConfig || cfg.File != "" || len(cfg.Credentials) != 1 || cfg.Credentials[0].Name != "openai" {
		t.Errorf("zero-config load = %+v", cfg)
	}

	// ./agentvault.yaml is a project config: used once its content is trusted.
	o := LoadOptions{LookupEnv: env, Cwd: root, Home: root}
	good := "version: 1\ncredentials:\n  - name: a\n    secret: env:A\n    hosts: [a.example.com]\n"
	path := writeFile(t, filepath.Join(root, "agentvault.yaml"), good)
	trustForTest(t, o, path, good)
	cfg, err = Load(o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ZeroConfig || cfg.File != path || len(cfg.Credentials) != 1 || cfg.Credentials[0].Name != "a" {
		t.Errorf("file load = %+v", cfg)
	}

	writeFile(t, path, "version: 1\nbogus: 1\n")
	trustForTest(t, o, path, "version: 1\nbogus: 1\n")
	_, err = Load(o)
	assertConfigError(t, err, path+":2:1: config: unknown key \"bogus\" ...")

	writeFile(t, path, strings.Repeat("#", maxConfigSize+1))
	_, err = Load(LoadOptions{LookupEnv: env, Cwd: root, Home: root})
	assertConfigError(t, err, path+": larger than 4 MiB; not a config file?")
}
