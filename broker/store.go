package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// maxStore bounds a token store; the real ones are a few kilobytes.
const maxStore = 1 << 20

// readStore reads the user's token store, refusing anything but a regular
// file the user owns: a symlink planted at the path could point the broker
// at, and later make it overwrite, a file the user did not mean.
func readStore(path string) ([]byte, fs.FileMode, error) {
	if err := checkStore(path); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("token store %s: %w", path, err)
	}
	defer f.Close()
	// The same checks on what was opened: the path may have been swapped
	// between the Lstat and the open.
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if err := checkInfo(path, st); err != nil {
		return nil, 0, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxStore+1))
	if err != nil {
		return nil, 0, fmt.Errorf("token store %s: %w", path, err)
	}
	if len(data) > maxStore {
		return nil, 0, fmt.Errorf("token store %s is larger than %d bytes", path, maxStore)
	}
	return data, st.Mode().Perm(), nil
}

// checkStore refuses a path that is not a regular file owned by the user.
func checkStore(path string) error {
	st, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("token store %s: %w", path, err)
	}
	return checkInfo(path, st)
}

func checkInfo(path string, st fs.FileInfo) error {
	if st.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("token store %s is a symlink; agentvault reads and writes only a regular file", path)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("token store %s is not a regular file", path)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("token store %s belongs to uid %d, not to this user (%d)", path, sys.Uid, os.Geteuid())
	}
	return nil
}

// writeStore replaces path with data atomically: a temporary file in the
// same directory, synced, given path's permissions, renamed over it, and
// the directory synced. A reader sees the old file or the new one, never a
// part. The rename replaces the directory entry itself, so even a symlink
// planted after the check is replaced, not followed.
func writeStore(path string, data []byte) (err error) {
	if err := checkStore(path); err != nil {
		return err
	}
	st, err := os.Lstat(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".agentvault-*")
	if err != nil {
		return fmt.Errorf("writing token store %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		return err
	}
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing token store %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		// A directory that cannot be synced (some filesystems) still has
		// the rename; the data itself was synced above.
		if serr := d.Sync(); serr != nil && !errors.Is(serr, syscall.EINVAL) {
			d.Close()
			return serr
		}
		d.Close()
	}
	return nil
}
