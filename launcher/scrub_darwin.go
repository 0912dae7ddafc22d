//go:build darwin

package launcher

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// startEnviron is the environment as the process started, captured before
// main can change it: envBlock needs the original entries in order.
var startEnviron = os.Environ()

// ScrubEnviron overwrites the process's original environment strings with
// zeros. On macOS they live at the top of the main thread's stack, after the
// argv strings, and any same-user process reads them there (`ps -E`,
// sysctl KERN_PROCARGS2, which copies that memory live). The Go runtime
// copied the variables at start-up, so os.Getenv and os.Environ keep working;
// libc's environ array is left pointing at empty strings.
//
// No cgo and no private runtime symbols: the runtime makes os.Args point at
// the kernel's argv strings without copying them, which gives the address;
// KERN_PROCARGS2 on our own pid gives the layout. Nothing is written unless
// the arguments are contiguous where the kernel put them and the memory from
// argv[0] to the top of the stack equals the kernel's snapshot byte for byte,
// so a wrong address is an error, never a stray write. The executable path
// before argv (os.Executable points at it) and the apple strings after the
// environment are left intact.
//
// Not run on a Mac in this project's CI: the layout checks make a mismatch an
// error (reported as a warning by run), not a crash.
func ScrubEnviron() error {
	args := os.Args
	if len(args) < 2 {
		return errors.New("too few arguments to locate the environment block")
	}
	procargs, err := unix.SysctlRaw("kern.procargs2", os.Getpid())
	if err != nil {
		return err
	}
	return scrubArgArea(procargs, args, startEnviron)
}
