package testsupport

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MotoBinary is moto_server where the machine image installs it: $MOTO_SERVER,
// then pyenv's versions (the real script, before a pyenv shim on PATH that may
// pick a Python without moto), then PATH, then next to a python3 that imports
// moto. "" when there is none.
func MotoBinary() string {
	if p := os.Getenv("MOTO_SERVER"); p != "" {
		return p
	}
	var roots []string
	if out, err := exec.Command("pyenv", "root").Output(); err == nil {
		roots = append(roots, strings.TrimSpace(string(out)))
	}
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, ".pyenv"))
	}
	for _, r := range roots {
		for _, pat := range []string{"versions/3.11.7/bin/moto_server", "versions/*/bin/moto_server"} {
			if m, _ := filepath.Glob(filepath.Join(r, pat)); len(m) > 0 {
				return m[0]
			}
		}
	}
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p
	}
	if out, err := exec.Command("python3", "-c", "import moto, sys; print(sys.executable)").Output(); err == nil {
		p := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "moto_server")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// StartMoto runs moto_server from bin on a loopback port until the test ends
// and returns its URL. moto checks no signatures: it is a secret store only.
func StartMoto(t testing.TB, bin string) string {
	t.Helper()
	return server{
		name: "moto_server",
		argv: func(port int) []string { return []string{bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port)} },
		// A clean environment: the machine's proxy and CA variables are not
		// the test's business, and moto needs none of them.
		env:    []string{"PATH=" + filepath.Dir(bin) + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "LANG=C.UTF-8"},
		health: "/moto-api/",
		wait:   20 * time.Second,
	}.start(t)
}
