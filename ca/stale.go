package ca

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A session directory is named agentvault-<session id>-<owner>-<random>, where
// <owner> is "p<pid>.<start>.<pidns>": the creating process's id, its start
// time (clock ticks since boot, from /proc/<pid>/stat) and the inode of its
// pid namespace. A directory whose owner is gone was left by an agentvault
// that could not clean up (SIGKILL, a crash, a power cut) and is removed by
// the next session. start and pidns are 0 where the system does not expose
// them; the pid alone then decides.
type owner struct {
	pid   int
	start uint64
	pidNS uint64
}

const dirPrefix = "agentvault-"

// maxSweepEntries bounds the work one session does for its predecessors,
// whatever a crowded (or deliberately flooded) temp directory holds.
const maxSweepEntries = 1 << 16

func (o owner) String() string {
	return "p" + strconv.Itoa(o.pid) + "." + strconv.FormatUint(o.start, 10) + "." + strconv.FormatUint(o.pidNS, 10)
}

// currentOwner describes this process.
func currentOwner() owner {
	pid := os.Getpid()
	start, _ := processStart(pid)
	return owner{pid: pid, start: start, pidNS: pidNamespace()}
}

// parseOwner reads the owner from a session directory's name. Names from
// older versions and anything else that is not exactly the format are
// rejected, so they are never touched.
func parseOwner(name string) (owner, bool) {
	if !strings.HasPrefix(name, dirPrefix) {
		return owner{}, false
	}
	parts := strings.Split(name[len(dirPrefix):], "-")
	if len(parts) < 3 || !allDigits(parts[len(parts)-1]) {
		return owner{}, false
	}
	tok, ok := strings.CutPrefix(parts[len(parts)-2], "p")
	if !ok {
		return owner{}, false
	}
	f := strings.Split(tok, ".")
	if len(f) != 3 || !allDigits(f[0]) || !allDigits(f[1]) || !allDigits(f[2]) {
		return owner{}, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return owner{}, false
	}
	start, err1 := strconv.ParseUint(f[1], 10, 64)
	ns, err2 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return owner{}, false
	}
	return owner{pid: pid, start: start, pidNS: ns}, true
}

// sweepStale removes, under each parent, the session directories whose
// owner is gone. It never touches an entry that another user owns, one from
// another pid namespace (its pids mean nothing here), or one whose owner
// may still run; it never follows a symbolic link (a link named like a
// session directory is itself removed, not what it points to). Errors are
// ignored: this is housekeeping, and the next session tries again.
func sweepStale(parents []string, self owner) {
	for _, parent := range parents {
		sweepParent(parent, self)
	}
}

func sweepParent(parent string, self owner) {
	d, err := os.Open(parent)
	if err != nil {
		return
	}
	var names []string
	for seen := 0; seen < maxSweepEntries; {
		ents, err := d.ReadDir(256)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), dirPrefix) {
				names = append(names, e.Name())
			}
		}
		seen += len(ents)
		if err != nil || len(ents) == 0 {
			break
		}
	}
	d.Close()
	for _, name := range names {
		o, ok := parseOwner(name)
		// A pid means something only in its own namespace; this session's
		// own directory is skipped outright (its pid is alive anyway).
		if !ok || o.pidNS != self.pidNS || o == self {
			continue
		}
		p := filepath.Join(parent, name)
		st, err := os.Lstat(p)
		if err != nil || !ownedByMe(st) || !ownerGone(o) {
			continue
		}
		if st.IsDir() {
			// RemoveAll unlinks what it finds and opens subdirectories
			// with O_NOFOLLOW: should the entry be swapped for a link
			// meanwhile, the link is what goes.
			os.RemoveAll(p)
		} else {
			// A link or a file: unlink the name only.
			os.Remove(p)
		}
	}
}

// ownerGone reports whether the process that created a session directory
// has exited: no process has its pid, or the one that does started at
// another time (the pid was reused). When in doubt it says no.
func ownerGone(o owner) bool {
	switch processExists(o.pid) {
	case procGone:
		return true
	case procUnknown:
		return false
	}
	if o.start == 0 {
		return false
	}
	start, ok := processStart(o.pid)
	return ok && start != o.start
}

type procState int

const (
	procUnknown procState = iota
	procAlive
	procGone
)

// processStart is the start time of pid in clock ticks since boot (field 22
// of /proc/<pid>/stat), where /proc exposes it.
func processStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	const startTime = 22 - 3 // f[0] is field 3
	if len(f) <= startTime {
		return 0, false
	}
	v, err := strconv.ParseUint(f[startTime], 10, 64)
	if err != nil || v == 0 {
		return 0, false
	}
	return v, true
}

// pidNamespace is the inode number of this process's pid namespace, or 0
// where /proc does not show it.
func pidNamespace() uint64 {
	st, err := os.Stat("/proc/self/ns/pid")
	if err != nil {
		return 0
	}
	return inode(st)
}
