//go:build linux

package launcher

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// MakeNonDumpable clears the process's dumpable flag. It must be called
// before any secret is fetched: from then on /proc/<agentvault>/environ, mem,
// fd and maps are root-owned and ptrace attach needs CAP_SYS_PTRACE, so the
// agent (same uid) cannot read agentvault's memory, environment or
// descriptors, and no core dump carries a secret. execve sets the flag back
// to 1 for the child, so the agent itself stays debuggable.
func MakeNonDumpable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}
