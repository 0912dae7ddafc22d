//go:build unix

package audit

import (
	"io/fs"
	"syscall"
)

// noFollowNoBlock: the last path component is never followed, and opening a
// FIFO returns at once instead of waiting for a reader.
const noFollowNoBlock = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// hardLinks is the file's link count.
func hardLinks(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
