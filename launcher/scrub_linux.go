//go:build linux

package launcher

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ScrubEnviron overwrites the process's original environment block, the
// memory /proc/<pid>/environ shows, with zeros. The Go runtime copied the
// variables at start-up, so os.Getenv and os.Environ keep working.
// Non-dumpability closes that file to same-uid processes; this also hides the
// secrets an env: reference read from anyone who can still read it (root,
// CAP_SYS_PTRACE).
//
// It must run before MakeNonDumpable: it writes through /proc/self/mem, which
// becomes root-owned (mode 0600) once the process is non-dumpable, so a
// non-root process can no longer open it.
func ScrubEnviron() error {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces; env_start and env_end are fields 50 and 51 of proc(5).
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return fmt.Errorf("unexpected /proc/self/stat")
	}
	fields := strings.Fields(s[i+1:])
	const envStart = 50 - 3 // fields[0] is field 3
	if len(fields) <= envStart+1 {
		return fmt.Errorf("/proc/self/stat has no env_start/env_end")
	}
	start, err1 := strconv.ParseUint(fields[envStart], 10, 64)
	end, err2 := strconv.ParseUint(fields[envStart+1], 10, 64)
	if err1 != nil || err2 != nil || end <= start || end-start > 1<<24 {
		return fmt.Errorf("bad env_start/env_end in /proc/self/stat")
	}
	mem, err := os.OpenFile("/proc/self/mem", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer mem.Close()
	if _, err := mem.WriteAt(make([]byte, end-start), int64(start)); err != nil {
		return fmt.Errorf("scrubbing the environment block: %w", err)
	}
	return nil
}
