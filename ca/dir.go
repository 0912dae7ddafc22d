package ca

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Dir is the session directory: mode 0700, holding only public material
// (the CA certificate and the trust bundle) and removed at exit.
type Dir struct {
	path string

	mu      sync.Mutex
	removed bool
}

// NewDir creates agentvault-<sessionID>-<owner>-<random> under
// $XDG_RUNTIME_DIR when it is set and usable (a per-user tmpfs, cleaned at
// logout), else under os.TempDir(). <owner> identifies this process (see
// owner); once the directory exists, the ones that dead sessions of this
// user left in the same places are removed.
func NewDir(lookupEnv func(string) (string, bool), sessionID string) (*Dir, error) {
	self := currentOwner()
	pattern := dirPrefix + safeName(sessionID) + "-" + self.String() + "-*"
	parents := dirParents(lookupEnv)
	var firstErr error
	for _, parent := range parents {
		p, err := os.MkdirTemp(parent, pattern)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		// MkdirTemp asks for 0700 but the umask applies; set it explicitly
		// and check, since the bundle's readers trust what is in here.
		if err := os.Chmod(p, 0o700); err != nil {
			os.Remove(p)
			return nil, fmt.Errorf("session directory: %w", err)
		}
		st, err := os.Lstat(p)
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			os.Remove(p)
			return nil, fmt.Errorf("session directory %s: could not make it a 0700 directory", p)
		}
		sweepStale(parents, self)
		return &Dir{path: p}, nil
	}
	return nil, fmt.Errorf("create session directory: %w", firstErr)
}

func dirParents(lookupEnv func(string) (string, bool)) []string {
	var out []string
	if x, ok := lookupEnv("XDG_RUNTIME_DIR"); ok && filepath.IsAbs(x) {
		if st, err := os.Stat(x); err == nil && st.IsDir() {
			out = append(out, x)
		}
	}
	return append(out, os.TempDir())
}

// safeName keeps the session id usable inside a file name.
func safeName(id string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, id)
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" {
		s = "session"
	}
	return s
}

// Path is the directory's absolute path.
func (d *Dir) Path() string { return d.path }

// WriteBundle writes bundle.pem (roots, then each extra, then the session
// CA) and ca.pem (the session CA alone), both 0644. Each part ends with a
// newline so no two PEM blocks run together. Files are written under a
// temporary name and renamed, so a reader never sees half a bundle.
func (d *Dir) WriteBundle(roots []byte, extra [][]byte, ca []byte) (bundlePath, caPath string, err error) {
	if len(bytes.TrimSpace(ca)) == 0 {
		return "", "", fmt.Errorf("write bundle: no session CA certificate")
	}
	var b bytes.Buffer
	for _, part := range append(append([][]byte{roots}, extra...), ca) {
		if len(bytes.TrimSpace(part)) == 0 {
			continue
		}
		b.Write(part)
		if part[len(part)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	caOnly := ca
	if ca[len(ca)-1] != '\n' {
		caOnly = append(append([]byte(nil), ca...), '\n')
	}
	bundlePath = filepath.Join(d.path, "bundle.pem")
	caPath = filepath.Join(d.path, "ca.pem")
	if err := writeFile(bundlePath, b.Bytes()); err != nil {
		return "", "", err
	}
	if err := writeFile(caPath, caOnly); err != nil {
		return "", "", err
	}
	return bundlePath, caPath, nil
}

func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		// Explicit, so the umask cannot make it narrower or wider: it is
		// public material, and the 0700 directory is what keeps others from
		// replacing it.
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// Remove deletes the directory and everything in it; calling it again is a
// no-op.
func (d *Dir) Remove() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.removed {
		return nil
	}
	if err := os.RemoveAll(d.path); err != nil {
		return fmt.Errorf("remove session directory: %w", err)
	}
	d.removed = true
	return nil
}
