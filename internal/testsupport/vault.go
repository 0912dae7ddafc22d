package testsupport

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	vaultOnce sync.Once
	vaultBin  string
	vaultErr  error
)

// VaultBinary is the Vault server binary scripts/vault-server built and
// cached, looked up once per test binary. It never builds one: that takes
// about 20 minutes and is the setup script's job, not go test's.
func VaultBinary() (string, error) {
	vaultOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			vaultErr = err
			return
		}
		script := filepath.Join(root, "scripts", "vault-server")
		var stderr bytes.Buffer
		cmd := exec.Command(script, "--cached")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			vaultErr = fmt.Errorf("no Vault server binary (%s --cached: %v: %s)", script, err, strings.TrimSpace(stderr.String()))
			return
		}
		vaultBin = strings.TrimSpace(string(out))
	})
	return vaultBin, vaultErr
}

// StartVault runs `vault server -dev` from bin with root token "root" on a
// loopback port until the test ends, and returns its address.
func StartVault(t testing.TB, bin string) string {
	t.Helper()
	return server{
		name: "vault dev server",
		argv: func(port int) []string {
			return []string{bin, "server", "-dev", "-dev-root-token-id=root",
				fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port), "-dev-no-store-token"}
		},
		env:    []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()},
		health: "/v1/sys/health",
		ready:  func(status int) bool { return status == http.StatusOK },
		wait:   30 * time.Second,
	}.start(t)
}

// moduleRoot is the nearest directory above the working directory (a
// package's, under go test) that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
