//go:build !unix

package audit

import "io/fs"

// Release builds are Unix-only; elsewhere the log gets only the regular-file
// check after the open.
const noFollowNoBlock = 0

func hardLinks(fs.FileInfo) uint64 { return 1 }
