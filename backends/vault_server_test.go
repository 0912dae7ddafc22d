package backends

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// The Vault tests run against a real `vault server -dev`, built once per
// machine by scripts/vault-server (which .ci/run calls before the tests).

var (
	vaultBinOnce sync.Once
	vaultBin     string
	vaultBinErr  string
)

// vaultBinary returns the cached Vault binary. Missing, it fails the test in
// CI and skips it elsewhere: building takes ~20 minutes, which is the setup
// script's job, not go test's.
func vaultBinary(t *testing.T) string {
	t.Helper()
	vaultBinOnce.Do(func() {
		script, err := filepath.Abs(filepath.Join("..", "scripts", "vault-server"))
		if err != nil {
			vaultBinErr = err.Error()
			return
		}
		var stderr bytes.Buffer
		cmd := exec.Command(script, "--cached")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			vaultBinErr = fmt.Sprintf("%s --cached: %v: %s", script, err, strings.TrimSpace(stderr.String()))
			return
		}
		vaultBin = strings.TrimSpace(string(out))
	})
	if vaultBin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(vaultBinErr)
		}
		t.Skip("no Vault server binary: " + vaultBinErr)
	}
	return vaultBin
}

// testVault is a running dev server and a root client for setting it up.
type testVault struct {
	addr string
	root *vault.Client
}

func vaultFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startVault starts a dev server on a free loopback port with root token
// "root" and stops it when the test ends.
func startVault(t *testing.T) *testVault {
	t.Helper()
	bin := vaultBinary(t)
	port := vaultFreePort(t)
	addr := fmt.Sprintf("http://127.0.0.1:%d", port)
	home := t.TempDir()
	cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id=root",
		fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port), "-dev-no-store-token")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home}
	var logs vaultLogBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("vault server %d did not exit", cmd.Process.Pid)
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			t.Fatalf("vault server exited early:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault server not healthy after 30s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vault server log (tail):\n%s", vaultLogTail(logs.String(), 4000))
		}
	})
	return &testVault{addr: addr, root: vaultTestClient(t, addr, "root")}
}

func vaultLogTail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// vaultTestClient is an api client for setup and verification with token tok.
func vaultTestClient(t *testing.T, addr, tok string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.ClearNamespace()
	c.SetToken(tok)
	return c
}

// write is a setup write that must succeed.
func (v *testVault) write(t *testing.T, path string, data map[string]any) *vault.Secret {
	t.Helper()
	s, err := v.root.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("setup write %s: %v", path, err)
	}
	return s
}

// tokenValid reports whether tok is still a live token.
func (v *testVault) tokenValid(t *testing.T, tok string) bool {
	t.Helper()
	s, err := v.root.Auth().Token().Lookup(tok)
	if err != nil {
		if strings.Contains(err.Error(), "bad token") || strings.Contains(err.Error(), "invalid token") {
			return false
		}
		t.Fatalf("token lookup: %v", err)
	}
	return s != nil
}

// openTestVault opens the backend with the YAML doc and environment env.
func openTestVault(t *testing.T, doc string, env map[string]string) *vaultBackend {
	t.Helper()
	b, err := Open(Options{Name: "vault", Type: "vault", Decode: yamlDecode(t, doc), LookupEnv: vaultEnv(env)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	vb := b.(*vaultBackend)
	t.Cleanup(func() { _ = vb.Close(context.Background()) })
	return vb
}

func vaultEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// vaultLogBuffer collects a child's output from two pipes.
type vaultLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *vaultLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *vaultLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
