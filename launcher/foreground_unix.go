//go:build unix

package launcher

import "golang.org/x/sys/unix"

// inForeground reports whether agentvault's process group is the foreground
// group of the terminal on stdin. A Ctrl-C there goes to the whole group,
// child included, so agentvault must not send it a second time; a SIGINT
// that arrives any other way (CI runners, supervisors, kill) was aimed at
// agentvault alone and must reach the child.
func inForeground() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}
