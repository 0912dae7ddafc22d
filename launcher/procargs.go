package launcher

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// envBlock finds the environment strings in a KERN_PROCARGS2 snapshot of this
// process's argument area (macOS; the parsing is pure so it is tested on every
// OS). The snapshot is: argc as a 32-bit little-endian int, the executable
// path and NUL padding, the argv strings, the environment strings, then the
// "apple" strings libSystem and the Go runtime read (os.Executable points into
// that area), each NUL-terminated and all contiguous.
//
// args must equal the argv strings and env must be the environment the
// process started with (os.Environ before any change), in order. It returns
// the offset of argv[0] and the extent [envOff, envOff+envLen) of the
// environment strings. The extent ends with env's last entry: it never covers
// an apple string, and it is an error, not a guess, when the snapshot does not
// match args and env. Empty strings and DYLD_* entries that env lacks are
// covered too: dyld removes DYLD_* variables from envp for restricted
// processes, which leaves their strings in place, and the runtime never sees
// an empty one.
func envBlock(procargs []byte, args, env []string) (argv0, envOff, envLen int, err error) {
	if len(procargs) < 4 {
		return 0, 0, 0, errors.New("procargs: too short")
	}
	if argc := int(binary.LittleEndian.Uint32(procargs)); argc != len(args) {
		return 0, 0, 0, fmt.Errorf("procargs: argc %d, the process has %d arguments", argc, len(args))
	}
	rest := procargs[4:]
	off := 4
	// The executable path, then NUL padding up to argv[0].
	path := bytes.IndexByte(rest, 0)
	if path < 0 {
		return 0, 0, 0, errors.New("procargs: no executable path")
	}
	i := path
	for i < len(rest) && rest[i] == 0 {
		i++
	}
	off += i
	argv0 = off
	next := func() (string, bool) {
		end := bytes.IndexByte(procargs[off:], 0)
		if end < 0 {
			return "", false
		}
		s := string(procargs[off : off+end])
		off += end + 1
		return s, true
	}
	for n, want := range args {
		got, ok := next()
		if !ok || got != want {
			return 0, 0, 0, fmt.Errorf("procargs: argument %d differs from the process's", n)
		}
	}
	envOff = off
	for n := 0; n < len(env); {
		got, ok := next()
		if !ok {
			return 0, 0, 0, fmt.Errorf("procargs: environment ends before entry %d", n)
		}
		switch {
		case got == env[n]:
			n++
		case got == "" || strings.HasPrefix(got, "DYLD_"):
			// Not in the runtime's copy; still part of the block.
		default:
			return 0, 0, 0, fmt.Errorf("procargs: environment entry %d differs from the process's", n)
		}
	}
	return argv0, envOff, off - envOff, nil
}
