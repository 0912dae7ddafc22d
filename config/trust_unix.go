//go:build unix

package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lockWait bounds how long update waits for another `agentvault trust`.
const lockWait = 5 * time.Second

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// read returns the record's content, or nil when there is none yet.
func (s trustStore) read() ([]byte, error) {
	fd, err := s.openDir(false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return s.readAt(fd)
}

// update replaces the record with change(old content) under an exclusive
// lock, writing a new file beside it and renaming it over: a reader sees
// the old record or the new one, and nothing is written through a symlink.
func (s trustStore) update(change func(old []byte) ([]byte, error)) error {
	fd, err := s.openDir(true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := lockDir(fd, s.dir()); err != nil {
		return err
	}
	old, err := s.readAt(fd)
	if err != nil {
		return err
	}
	data, err := change(old)
	if err != nil {
		return err
	}
	tmp := "." + trustFileName + "-" + randomSuffix()
	tfd, err := unix.Openat(fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return pathErr("create", filepath.Join(s.dir(), tmp), err)
	}
	f := os.NewFile(uintptr(tfd), filepath.Join(s.dir(), tmp))
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(fd, tmp, fd, trustFileName)
	}
	if err != nil {
		unix.Unlinkat(fd, tmp, 0)
		return fmt.Errorf("writing %s: %w", s.path(), err)
	}
	// The rename is durable once the directory is.
	unix.Fsync(fd)
	return nil
}

// openDir opens the record's directory: base as the user named it, then
// each component under it without following a symlink, each owned by the
// user, the last one writable by nobody else. With create, missing
// components are made 0700; without, a missing one is os.ErrNotExist.
func (s trustStore) openDir(create bool) (int, error) {
	if create {
		if err := os.MkdirAll(s.base, 0o700); err != nil {
			return -1, err
		}
	}
	fd, err := unix.Open(s.base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, pathErr("open", s.base, err)
	}
	p := s.base
	for i, name := range s.under {
		p = filepath.Join(p, name)
		next, err := unix.Openat(fd, name, dirFlags, 0)
		if err == unix.ENOENT && create {
			if err = unix.Mkdirat(fd, name, 0o700); err == nil || err == unix.EEXIST {
				next, err = unix.Openat(fd, name, dirFlags, 0)
			}
		}
		if err != nil {
			err = describeAt(fd, name, p, err)
			unix.Close(fd)
			return -1, err
		}
		unix.Close(fd)
		fd = next
		if err := checkOwned(fd, p, i == len(s.under)-1); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// readAt reads the record in the opened directory; nil when it is absent.
// It must be a regular file of the user's that nobody else can write.
func (s trustStore) readAt(dirfd int) ([]byte, error) {
	p := s.path()
	fd, err := unix.Openat(dirfd, trustFileName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, describeAt(dirfd, trustFileName, p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, pathErr("stat", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file; refusing to use it", p)
	}
	if err := ownedPrivate(st, p, true); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxTrustRecord+1))
	if err != nil {
		return nil, pathErr("read", p, err)
	}
	if len(data) > maxTrustRecord {
		return nil, fmt.Errorf("%s is larger than %d bytes; refusing to use it", p, maxTrustRecord)
	}
	return data, nil
}

func checkOwned(fd int, p string, private bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return pathErr("stat", p, err)
	}
	return ownedPrivate(st, p, private)
}

// ownedPrivate: owned by the user, and when private, writable by no one else
// (another user who could write the record could trust any config for us).
func ownedPrivate(st unix.Stat_t, p string, private bool) error {
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("%s is owned by uid %d, not by you (uid %d); refusing to use it", p, st.Uid, uid)
	}
	if private && st.Mode&0o022 != 0 {
		return fmt.Errorf("%s is writable by others (mode %o); refusing to use it (chmod go-w it)", p, st.Mode&0o777)
	}
	return nil
}

// describeAt turns a failed open of name in dirfd into a message that says
// what was found there. The open decided; this only words it.
func describeAt(dirfd int, name, p string, err error) error {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			return fmt.Errorf("%s is a symbolic link; refusing to follow it (set XDG_STATE_HOME to a real directory if you keep your state elsewhere)", p)
		case unix.S_IFDIR, unix.S_IFREG:
		default:
			return fmt.Errorf("%s is not a regular file or directory; refusing to use it", p)
		}
	}
	return pathErr("open", p, err)
}

// lockDir takes an exclusive flock on the directory so two `agentvault
// trust` runs do not lose each other's entry; it gives up after lockWait.
func lockDir(fd int, p string) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			return pathErr("lock", p, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is locked by another process for more than %s", p, lockWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pathErr keeps the errno, so errors.Is(err, fs.ErrNotExist) still works.
func pathErr(op, p string, err error) error { return &os.PathError{Op: op, Path: p, Err: err} }

func randomSuffix() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
