package backends

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxFileSize bounds what file: reads; a secret is small, and a mistaken path
// to a log or an image should fail fast instead of filling memory.
const maxFileSize = 1 << 20

// fileBackend reads a secret from a file: file:PATH[#field].
type fileBackend struct {
	typ    string
	lookup func(string) (string, bool)
}

func openFile(o Options) (Backend, error) {
	if err := noOptions(o); err != nil {
		return nil, err
	}
	return &fileBackend{typ: o.Type, lookup: o.LookupEnv}, nil
}

func (b *fileBackend) Type() string { return b.typ }

func (b *fileBackend) Resolve(ctx context.Context, ref string) (Secret, error) {
	if err := ctx.Err(); err != nil {
		return Secret{}, err
	}
	p, field := SplitField(ref)
	if p == "" {
		return Secret{}, fmt.Errorf("empty file path in reference %q", ref)
	}
	path, err := b.expandHome(p)
	if err != nil {
		return Secret{}, err
	}
	data, err := readBounded(path)
	if err != nil {
		return Secret{}, err
	}
	v := trimOneNewline(string(data))
	if v == "" {
		return Secret{}, fmt.Errorf("secret file %s is empty", path)
	}
	v, err = applyField(v, field)
	if err != nil {
		return Secret{}, fmt.Errorf("secret file %s: %w", path, err)
	}
	return Secret{Value: v}, nil
}

// expandHome expands a leading "~" or "~/"; "~user" is not supported and is
// refused rather than read as a relative path named "~user".
func (b *fileBackend) expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		if strings.HasPrefix(p, "~") {
			return "", fmt.Errorf("secret file %s: only ~ and ~/ are expanded", p)
		}
		return p, nil
	}
	home, ok := b.lookup("HOME")
	if !ok || home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("secret file %s: cannot expand ~: %v", p, err)
		}
		home = h
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %v", path, pathErr(err))
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("secret file %s is a directory", path)
	}
	// Read one byte past the limit instead of trusting Stat: /proc files and
	// pipes report size 0.
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %v", path, pathErr(err))
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("secret file %s is larger than 1 MiB", path)
	}
	return data, nil
}

// pathErr drops the path from an *fs.PathError, which the caller already names.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (b *fileBackend) ConsumedEnv() []string       { return nil }
func (b *fileBackend) Close(context.Context) error { return nil }
