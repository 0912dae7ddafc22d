//go:build unix

package ca

import (
	"errors"
	"os"
	"syscall"
)

// ownedByMe: the entry itself (not what a link points to) belongs to this
// process's user.
func ownedByMe(st os.FileInfo) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(s.Uid) == os.Getuid()
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino)
	}
	return 0
}

// processExists asks the kernel with signal 0, which checks without sending:
// ESRCH means no such process; EPERM means one that belongs to someone else.
func processExists(pid int) procState {
	if pid <= 0 {
		return procUnknown
	}
	err := syscall.Kill(pid, 0)
	switch {
	case err == nil, errors.Is(err, syscall.EPERM):
		return procAlive
	case errors.Is(err, syscall.ESRCH):
		return procGone
	}
	return procUnknown
}
