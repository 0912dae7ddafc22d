//go:build unix

package main

import "syscall"

// noFollow makes an open fail on a symlink in the last path component.
const noFollow = syscall.O_NOFOLLOW
