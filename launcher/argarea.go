//go:build darwin || linux

package launcher

import (
	"bytes"
	"errors"
	"unsafe"
)

// scrubArgArea zeroes the environment strings in this process's argument area
// given a KERN_PROCARGS2-shaped snapshot of it (see envBlock). args must be
// os.Args itself: the runtime makes its strings point at the kernel's argv
// strings without copying, which is how the area is found without cgo.
//
// Nothing is written unless the argument strings are contiguous in memory as
// in the snapshot (pointer comparisons, no reads) and the memory from argv[0]
// to the snapshot's end equals the snapshot byte for byte; a wrong address is
// an error, never a stray write. macOS uses it; Linux has /proc/self/mem for
// the same job, and its tests drive this with a snapshot built from
// /proc/self/cmdline and /proc/self/environ, which lie the same way.
func scrubArgArea(procargs []byte, args, env []string) error {
	if len(args) < 2 {
		return errors.New("too few arguments to locate the environment block")
	}
	argv0, envOff, envLen, err := envBlock(procargs, args, env)
	if err != nil {
		return err
	}
	base := unsafe.StringData(args[0])
	at := 0
	for _, a := range args {
		if unsafe.StringData(a) != (*byte)(unsafe.Add(unsafe.Pointer(base), at)) {
			return errors.New("os.Args is not the kernel's argument area")
		}
		at += len(a) + 1
	}
	mem := unsafe.Slice(base, len(procargs)-argv0)
	if !bytes.Equal(mem, procargs[argv0:]) {
		return errors.New("the argument area differs from the snapshot")
	}
	clear(mem[envOff-argv0 : envOff-argv0+envLen])
	return nil
}
