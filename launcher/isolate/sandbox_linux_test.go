package isolate

import (
	"bytes"
	"context"
	"net"
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

// runner runs the helper as one user, optionally under a wrapper command.
type runner struct {
	name     string
	uid, gid int
	bin      string // the test binary, where that user can run it
	home     string // a directory the user owns, used as the working directory
}

type result struct {
	stdout, stderr string
	code           int
}

func (r runner) run(t *testing.T, wrap []string, env map[string]string, script string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append(append([]string{}, wrap...), r.bin)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = r.home
	cmd.Env = []string{"PATH=/usr/bin:/bin", helperVar + "=run", "ISOLATE_SCRIPT=" + script, "GORACE=atexit_sleep_ms=0"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if r.uid != os.Geteuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.gid)}}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("helper as %s: %v", r.name, err)
	}
	return result{out.String(), errb.String(), code}
}

// runners are the invoking user and, when the tests run as root, an
// unprivileged one: the unprivileged path (PID 1 maps its own ids) is the
// one most users take.
func runners(t *testing.T) []runner {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rs := []runner{{name: "invoking user", uid: os.Geteuid(), gid: os.Getegid(), bin: self, home: t.TempDir()}}
	if os.Geteuid() != 0 {
		return rs
	}
	uid, gid, ok := unprivilegedUser(t)
	if !ok {
		return rs
	}
	dir, err := os.MkdirTemp("", "isolate-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "isolate.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(home, uid, gid)
	return append(rs, runner{name: "unprivileged user", uid: uid, gid: gid, bin: bin, home: home})
}

const probeUser = "agentvault-e2e"

func unprivilegedUser(t *testing.T) (int, int, bool) {
	u, err := user.Lookup(probeUser)
	if err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", probeUser).CombinedOutput(); err != nil {
			t.Logf("no unprivileged user to test as: useradd: %v %s", err, out)
			return 0, 0, false
		}
		if u, err = user.Lookup(probeUser); err != nil {
			return 0, 0, false
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, true
}

// TestSandbox runs scripts inside a sandbox, as each runner, and checks what
// the command can see and reach.
func TestSandbox(t *testing.T) {
	// A TCP server and a UDP "resolver" on the host's loopback: the command
	// must reach neither.
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.0 200 OK\r\n\r\nhost-server"))
			c.Close()
		}
	}()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := udp.ReadFrom(buf)
			if err != nil {
				return
			}
			udp.WriteTo(append([]byte("answer:"), buf[:n]...), from)
		}
	}()
	tcpPort := tcp.Addr().(*net.TCPAddr).Port
	udpPort := udp.LocalAddr().(*net.UDPAddr).Port

	for _, r := range runners(t) {
		t.Run(r.name, func(t *testing.T) {
			secrets := filepath.Join(r.home, "secrets")
			os.MkdirAll(filepath.Join(secrets, "dir"), 0o700)
			os.WriteFile(filepath.Join(secrets, "dir", "credentials"), []byte("aws-secret"), 0o600)
			os.WriteFile(filepath.Join(secrets, "token"), []byte("vault-token"), 0o600)
			for _, p := range []string{secrets, filepath.Join(secrets, "dir"), filepath.Join(secrets, "dir", "credentials"), filepath.Join(secrets, "token")} {
				os.Chown(p, r.uid, r.gid)
			}
			env := map[string]string{
				"ISOLATE_PORT": strconv.Itoa(freePort(t)),
				"ISOLATE_HIDE": filepath.Join(secrets, "dir") + ":" + filepath.Join(secrets, "token"),
			}
			cases := []struct {
				name, script, want string
				code               int
			}{
				{"the proxy's port answers inside", `curl -sS --max-time 5 "http://127.0.0.1:$PORT/"`, "proxied", 0},
				{"no host loopback server", "curl -sS --max-time 5 http://127.0.0.1:" + strconv.Itoa(tcpPort) + "/ || echo unreachable",
					"unreachable", 0},
				{"no UDP (DNS) to the host", `python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
try:
    s.sendto(b"query", ("127.0.0.1", ` + strconv.Itoa(udpPort) + `)); print(s.recv(64).decode())
except OSError as e:
    print("no answer")'`, "no answer", 0},
				{"only loopback", `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '`, "lo", 0},
				// At most init, sh, its subshell, ls and wc (some may not have
				// started yet or be done already):
				// nothing of the host's.
				{"own PID namespace", `n=$(ls -d /proc/[0-9]* | wc -l); [ "$n" -le 5 ] && echo few || echo "$n"`, "few", 0},
				{"uid and gid mapped", "id -u; id -g", strconv.Itoa(r.uid) + "\n" + strconv.Itoa(r.gid), 0},
				{"no capabilities", `grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status | tr -s '\t' ' '`,
					"CapInh: 0000000000000000\nCapPrm: 0000000000000000\nCapEff: 0000000000000000\nCapBnd: 0000000000000000\nCapAmb: 0000000000000000\nNoNewPrivs: 1", 0},
				{"hidden directory is empty", `ls -A secrets/dir | wc -l; cat secrets/dir/credentials 2>/dev/null || echo absent`, "0\nabsent", 0},
				{"hidden file is empty", `cat secrets/token; echo "[$(wc -c < secrets/token)]"`, "[0]", 0},
				{"working directory readable and writable", `echo written > ./new && cat ./new`, "written", 0},
				{"exit status", "exit 7", "", 7},
				{"death by signal is 128+N", "kill -TERM $$", "", 143},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					res := r.run(t, nil, env, c.script)
					if res.code != c.code || strings.TrimSpace(res.stdout) != c.want {
						t.Errorf("exit %d, stdout %q; want %d, %q (stderr %q)", res.code, strings.TrimSpace(res.stdout), c.code, c.want, res.stderr)
					}
				})
			}
		})
	}
}
