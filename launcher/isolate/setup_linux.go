package isolate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// setup runs PID 1's privileged steps in order and names the one that failed.
func setup(m msg) (string, error) {
	if err := mapIDs(m.UID, m.GID); err != nil {
		return stepMapIDs, err
	}
	// Slave, not private: the host's later mounts (a USB disk) still show up,
	// while nothing mounted here reaches the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return stepMounts, err
	}
	// The new PID namespace's own /proc: the host's would show every process.
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return stepProc, err
	}
	if err := loopbackUp(); err != nil {
		return stepLoopback, err
	}
	if m.Transparent {
		if step, err := setupTransparent(); err != nil {
			return step, err
		}
	}
	pinned := map[string]bool{}
	for _, p := range m.Hide {
		if err := pinAbove(p, m.UID, pinned); err != nil {
			return stepHide + p, err
		}
		if err := hide(p); err != nil {
			return stepHide + p, err
		}
	}
	if err := unix.Chdir(m.Dir); err != nil {
		return stepDir, err
	}
	// From here on, the command (same uid) cannot read PID 1's memory or
	// descriptors, nor attach to it. The maps above needed it dumpable.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return "marking the sandbox's init non-dumpable", err
	}
	return "", nil
}

// mapIDs maps uid and gid (agentvault's, in the parent namespace) to the same
// numbers inside. An unprivileged process may map only its own ids, and its
// gid only once setgroups is denied.
func mapIDs(uid, gid int) error {
	if err := os.WriteFile("/proc/self/uid_map", []byte(fmt.Sprintf("%d %d 1\n", uid, uid)), 0); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/self/setgroups", []byte("deny"), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.WriteFile("/proc/self/gid_map", []byte(fmt.Sprintf("%d %d 1\n", gid, gid)), 0)
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// hide covers p (following symlinks, so a link's target is what is hidden): a
// directory with an empty tmpfs only the user can enter, anything else with
// /dev/null, which reads as empty and discards writes. A path that does not
// exist is left alone.
func hide(p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ENOTDIR):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return unix.Mount("tmpfs", p, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700,size=16m")
	}
	return unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
}

// pinAbove pins the directories above hidden path p (what its symlinks
// resolve to) that uid could rename, so the real file cannot be moved out
// from under its cover to where the next session does not hide it. A path
// that does not exist is left alone, as by hide.
func pinAbove(p string, uid int, pinned map[string]bool) error {
	real, err := filepath.EvalSymlinks(p)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ENOTDIR):
		return nil
	case err != nil:
		return err
	}
	return pin(filepath.Dir(real), uid, pinned)
}

// pin binds dir and each directory above it that uid could rename onto
// itself. rename(2) refuses to move a mount point (EBUSY), and the agent
// holds no capability to unmount one; without this, renaming a hidden
// file's parent (mv ~/.config ~/x) moves the file, cover and all, and in
// the next session ~/x/gh/hosts.yml is in plain sight. The bind is
// recursive: mounts below, the covers made so far included, stay in place.
// Moving a file between a pinned directory and the rest of the tree now
// takes a copy (EXDEV, which mv handles).
func pin(dir string, uid int, pinned map[string]bool) error {
	for d := dir; d != "/" && d != "." && !pinned[d]; d = filepath.Dir(d) {
		pinned[d] = true
		if !renamable(d, uid) {
			continue
		}
		if err := unix.Mount(d, d, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("pinning %s: %w", d, err)
		}
	}
	return nil
}

// renamable reports whether uid may be able to rename d: its parent is
// writable by uid as owner, by a group (supplementary groups still apply
// inside) or by anyone, and, when the parent is sticky, uid owns d or the
// parent. It errs towards yes: a needless pin costs only EXDEV on moves.
func renamable(d string, uid int) bool {
	var ps, ds unix.Stat_t
	if unix.Stat(filepath.Dir(d), &ps) != nil || unix.Lstat(d, &ds) != nil {
		return true
	}
	writable := (int(ps.Uid) == uid && ps.Mode&0o200 != 0) || ps.Mode&0o022 != 0
	if !writable {
		return false
	}
	if ps.Mode&unix.S_ISVTX != 0 {
		return int(ds.Uid) == uid || int(ps.Uid) == uid
	}
	return true
}

// dropCapabilities leaves this thread (and what it starts) no capability and
// no way to gain one: root gets none at execve (SECBIT_NOROOT, locked),
// ambient ones are gone and cannot be raised, the bounding set is empty, and
// no_new_privs ignores set-uid bits and file capabilities.
func dropCapabilities() error {
	// linux/securebits.h: noroot, no_setuid_fixup and no_cap_ambient_raise
	// set and locked (bits 0-3, 6, 7), keep_caps locked off (bit 5).
	const bits = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<5 | 1<<6 | 1<<7
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, bits, 0, 0, 0); err != nil {
		return fmt.Errorf("securebits: %w", err)
	}
	last, err := lastCap()
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return nil
}

func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
