//go:build !linux

package launcher

// MakeNonDumpable is a no-op outside Linux, which has no per-process
// dumpable flag; see the Linux version for what it protects there.
func MakeNonDumpable() error { return nil }
