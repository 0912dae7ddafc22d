package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const probeUser = "agentvault-e2e"

// unprivileged returns the uid and gid of a user without privileges, creating
// one when the tests run as root. It skips only when none can be had.
func unprivileged(t *testing.T) (uint32, uint32) {
	t.Helper()
	if os.Geteuid() != 0 {
		return uint32(os.Geteuid()), uint32(os.Getegid())
	}
	u, err := user.Lookup(probeUser)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", probeUser).CombinedOutput()
		if err != nil {
			t.Skipf("cannot create an unprivileged user to test as: useradd: %v %s", err, out)
		}
		if u, err = user.Lookup(probeUser); err != nil {
			t.Skipf("cannot look up %s after creating it: %v", probeUser, err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uint32(uid), uint32(gid)
}

// unprivilegedDir makes a directory the user can enter, holding a copy of the
// binary (the build's own directory is private to root) and a home directory
// the user owns.
func unprivilegedDir(t *testing.T, uid, gid uint32) (dir, bin, home string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "agentvault-probe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin = filepath.Join(dir, "agentvault")
	data, err := os.ReadFile(avBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	home = filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	return dir, bin, home
}

// The probe runs as agentvault's child, as the same unprivileged user, and
// tries the three ways into its parent's secrets.
const probeScript = `
import ctypes, json, os
pid = os.getppid()
res = {"pid": pid}
try:
    with open("/proc/%d/environ" % pid, "rb") as f:
        res["environ"] = "readable"
        res["environ_has_secret"] = b"PROBE_SECRET" in f.read()
except OSError as e:
    res["environ"] = e.strerror
try:
    fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    os.close(fd)
    res["mem"] = "readable"
except OSError as e:
    res["mem"] = e.strerror
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
    res["ptrace"] = "attached"
    os.waitpid(pid, 0)
    libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
else:
    res["ptrace"] = os.strerror(ctypes.get_errno())
print(json.dumps(res))
`

// TestChildCannotReadAgentvault: as an unprivileged user, the agent cannot
// read agentvault's environment or memory, nor attach to it.
func TestChildCannotReadAgentvault(t *testing.T) {
	needBinary(t)
	uid, gid := unprivileged(t)
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("this test needs %s (a python3 any user can run): %v", py, err)
	}
	dir, bin, home := unprivilegedDir(t, uid, gid)
	cfg := writeFile(t, dir, "agentvault.yaml", `version: 1
credentials:
  - name: probe
    secret: env:PROBE_SECRET
    hosts: [api.example.test]
    inject: bearer
`)
	os.Chmod(cfg, 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "-q", "-c", cfg, "--", py, "-c", probeScript)
	cmd.Dir = home
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "PROBE_SECRET=probe-secret-value-0042"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("agentvault as uid %d: %v\n%s", uid, err, out)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(out))), &res); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	t.Logf("probe as uid %d: %v", uid, res)
	for _, k := range []string{"environ", "mem"} {
		if res[k] == "readable" {
			t.Errorf("the child could open /proc/<agentvault>/%s", k)
		}
	}
	if res["ptrace"] == "attached" {
		t.Error("the child could ptrace-attach to agentvault")
	}
	if res["environ_has_secret"] == true {
		t.Error("the child read the secret from agentvault's environment")
	}
}
