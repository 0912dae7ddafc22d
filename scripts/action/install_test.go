// Package action_test drives the GitHub Action's scripts (install, run) the way
// action.yml calls them, against a fake release served on 127.0.0.1. Nothing
// here needs GitHub or any other network.
package action_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeRelease is one release as goreleaser lays it out under
// /releases/download/<tag>/.
type fakeRelease struct {
	tag       string
	archive   []byte // agentvault_<version>_<os>_<arch>.tar.gz
	checksums string // checksums.txt
}

func tarGz(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func archiveName(version string) string {
	return fmt.Sprintf("agentvault_%s_%s_%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
}

// serve answers like GitHub's releases pages: /releases/latest redirects to the
// tag page, assets live under /releases/download/<tag>/.
func serve(t *testing.T, rel fakeRelease) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		dl := "/releases/download/" + rel.tag + "/"
		switch r.URL.Path {
		case "/releases/latest":
			http.Redirect(w, r, "/releases/tag/"+rel.tag, http.StatusFound)
		case "/releases/tag/" + rel.tag:
			w.Write([]byte("release page"))
		case dl + "checksums.txt":
			w.Write([]byte(rel.checksums))
		case dl + archiveName(strings.TrimPrefix(rel.tag, "v")):
			w.Write(rel.archive)
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL + "/releases"
}

// cleanEnv keeps the machine's presets (SSL_CERT_FILE, proxies, ...) out of
// the script.
func cleanEnv(home string, extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LC_ALL=C"}, extra...)
}

func runScript(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("./install", args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return stdout.String(), stderr.String(), err
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("install did not finish in 60s; stderr: %s", stderr.String())
		return "", "", nil
	}
}

func TestInstallVerifiesChecksum(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("the action installs Linux and macOS releases only")
	}
	binary := []byte("#!/bin/sh\necho fake agentvault\n")
	good := tarGz(t, map[string][]byte{"agentvault": binary, "LICENSE": []byte("license"), "README.md": []byte("readme")})
	evil := tarGz(t, map[string][]byte{"agentvault": []byte("#!/bin/sh\necho tampered\n")})
	name := archiveName("1.2.3")
	other := archiveName("1.2.4")
	noBinary := tarGz(t, map[string][]byte{"README.md": []byte("x")})

	tests := []struct {
		name      string
		version   string
		archive   []byte
		checksums string
		wantErr   string // empty: must install
	}{
		{"right checksum", "v1.2.3", good, sum(good) + "  " + name + "\n" + sum(evil) + "  " + other + "\n", ""},
		{"version without v", "1.2.3", good, sum(good) + "  " + name + "\n", ""},
		{"latest follows the redirect", "latest", good, sum(good) + "  " + name + "\n", ""},
		{"binary-mode checksum line", "v1.2.3", good, sum(good) + " *" + name + "\n", ""},
		{"tampered archive", "v1.2.3", evil, sum(good) + "  " + name + "\n", "checksum mismatch"},
		{"wrong checksum", "v1.2.3", good, strings.Repeat("0", 64) + "  " + name + "\n", "checksum mismatch"},
		{"only another archive's checksum", "v1.2.3", good, sum(good) + "  " + other + "\n", "no single entry"},
		{"a longer name does not match", "v1.2.3", good, sum(good) + "  " + name + ".sbom.json\n", "no single entry"},
		{"two entries for the archive", "v1.2.3", good, sum(good) + "  " + name + "\n" + sum(evil) + "  " + name + "\n", "no single entry"},
		{"entry is not a SHA-256", "v1.2.3", good, "abc  " + name + "\n", "not a SHA-256"},
		{"empty checksums", "v1.2.3", good, "", "no single entry"},
		{"path in version", "v1.2.3/../../x", good, sum(good) + "  " + name + "\n", "not a release version"},
		{"archive without the binary", "v1.2.3", noBinary, sum(noBinary) + "  " + name + "\n", "has no agentvault binary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := serve(t, fakeRelease{tag: "v1.2.3", archive: tc.archive, checksums: tc.checksums})
			dir := filepath.Join(t.TempDir(), "bin")
			stdout, stderr, err := runScript(t, cleanEnv(t.TempDir(), "AGENTVAULT_RELEASES="+base), tc.version, dir)
			_, statErr := os.Stat(filepath.Join(dir, "agentvault"))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("installed (%s); want refusal %q", stdout, tc.wantErr)
				}
				if !strings.Contains(stderr, tc.wantErr) {
					t.Fatalf("stderr %q; want %q", stderr, tc.wantErr)
				}
				if statErr == nil {
					t.Fatalf("refused but %s/agentvault exists", dir)
				}
				return
			}
			if err != nil {
				t.Fatalf("install: %v; stderr: %s", err, stderr)
			}
			got, err := os.ReadFile(strings.TrimSpace(stdout))
			if err != nil || !bytes.Equal(got, binary) {
				t.Fatalf("installed %q (%v); want the release's binary", got, err)
			}
			if fi, _ := os.Stat(strings.TrimSpace(stdout)); fi.Mode()&0o111 == 0 {
				t.Fatalf("installed binary is not executable: %v", fi.Mode())
			}
		})
	}
}

// The releases URL must be https (loopback http is the tests' only exception):
// a downgraded download would make the checksum file as forgeable as the archive.
func TestInstallRefusesPlainHTTP(t *testing.T) {
	for _, base := range []string{
		"http://example.test/releases",
		"http://127.0.0.1.example.test/releases",
		"ftp://127.0.0.1/releases",
	} {
		t.Run(base, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bin")
			_, stderr, err := runScript(t, cleanEnv(t.TempDir(), "AGENTVAULT_RELEASES="+base), "v1.2.3", dir)
			if err == nil || !strings.Contains(stderr, "must be https") {
				t.Fatalf("err %v, stderr %q; want a refusal before any download", err, stderr)
			}
		})
	}
}
