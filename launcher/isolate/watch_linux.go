package isolate

import (
	"errors"
	"io/fs"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchHidden keeps the hidden paths covered when a process outside the
// sandbox replaces or creates one during the session. A cover is a mount on
// a directory entry, and Linux detaches mounts on an entry that is replaced
// or removed in any namespace: `docker login`, git's credential store or an
// editor rewriting a hidden file by rename would otherwise show the new file
// to the agent. PID 1 watches each hidden path's directory and covers the new
// entry as soon as the kernel reports it.
//
// This narrows the exposure to the moment between the rename and the new
// cover (well under a millisecond); an agent reading the path in a tight
// loop at that moment can still win the race (docs/isolation.md).
//
// It must be called before PID 1's main thread drops its capabilities: the
// watching goroutine locks itself to a thread that keeps the sandbox's
// capabilities to mount with (threads are made from Go's template thread,
// created with them, whatever thread asks for one later).
func watchHidden(paths []string) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return err
	}
	names := map[int]map[string]bool{} // watch -> base names hidden in it
	dirs := map[int]string{}
	for _, p := range paths {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		} else if !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		dir, name := filepath.Dir(p), filepath.Base(p)
		wd, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ONLYDIR)
		if err != nil {
			continue // its directory does not exist: nothing to replace
		}
		if names[wd] == nil {
			names[wd] = map[string]bool{}
		}
		names[wd][name] = true
		dirs[wd] = dir
	}
	if len(dirs) == 0 {
		unix.Close(fd)
		return nil
	}
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with PID 1
		close(ready)
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || n <= 0 {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				end := off + unix.SizeofInotifyEvent + int(ev.Len)
				if end > n {
					break
				}
				name := cString(buf[off+unix.SizeofInotifyEvent : end])
				if names[int(ev.Wd)][name] {
					hide(filepath.Join(dirs[int(ev.Wd)], name))
				}
				off = end
			}
		}
	}()
	<-ready
	return nil
}

// cString is the NUL-terminated (and padded) name of an inotify event.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
