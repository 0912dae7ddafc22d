//go:build unix

package ca

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestNewDirMode runs under a umask of 0 so only the explicit chmod can make
// the directory 0700 and the files 0644.
func TestNewDirMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	xdg := t.TempDir()
	aFile := filepath.Join(xdg, "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		env        map[string]string
		wantParent string
	}{
		{"xdg runtime dir", map[string]string{"XDG_RUNTIME_DIR": xdg}, xdg},
		{"no xdg", nil, os.TempDir()},
		{"xdg missing", map[string]string{"XDG_RUNTIME_DIR": filepath.Join(xdg, "nope")}, os.TempDir()},
		{"xdg relative", map[string]string{"XDG_RUNTIME_DIR": "relative"}, os.TempDir()},
		{"xdg is a file", map[string]string{"XDG_RUNTIME_DIR": aFile}, os.TempDir()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDir(envOf(tt.env), "av-1/../x y")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Remove()
			if filepath.Dir(d.Path()) != filepath.Clean(tt.wantParent) {
				t.Errorf("dir %s not under %s", d.Path(), tt.wantParent)
			}
			if b := filepath.Base(d.Path()); !strings.HasPrefix(b, "agentvault-av-1_.._x_y-") {
				t.Errorf("dir name %q", b)
			}
			st, err := os.Lstat(d.Path())
			if err != nil {
				t.Fatal(err)
			}
			if !st.IsDir() || st.Mode().Perm() != 0o700 {
				t.Errorf("mode %v, want drwx------", st.Mode())
			}

			bundle, caPath, err := d.WriteBundle([]byte("x"), nil, []byte("y"))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{bundle, caPath} {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o644 || filepath.Dir(p) != d.Path() {
					t.Errorf("%s: mode %v, want 0644 inside the session dir", p, st.Mode())
				}
			}
		})
	}
}
