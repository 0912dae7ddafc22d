package ca

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pemOf returns the PEM of n fresh CA certificates.
func pemOf(t *testing.T, n int) []byte {
	t.Helper()
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, mustNew(t, Options{Hosts: []string{"x.test"}}).CertPEM()...)
	}
	return b
}

func countCerts(data []byte) int {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return n
		}
		if b.Type == "CERTIFICATE" {
			n++
		}
	}
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestTrustedRoots(t *testing.T) {
	dir := t.TempDir()
	two := pemOf(t, 2)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withNoise := append([]byte("# a comment\n"), two...)
	withNoise = append(withNoise, []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")...)
	envFile := write("env.pem", withNoise)
	sysFile := write("sys.pem", pemOf(t, 3))
	emptyFile := write("empty.pem", []byte("nothing here\n"))
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name       string
		env        map[string]string
		candidates []string
		certs      int
		errHas     string
	}{
		{"SSL_CERT_FILE wins", map[string]string{"SSL_CERT_FILE": envFile}, []string{sysFile}, 2, ""},
		{"first existing system bundle", nil, []string{missing, sysFile, envFile}, 3, ""},
		{"empty SSL_CERT_FILE ignored", map[string]string{"SSL_CERT_FILE": ""}, []string{sysFile}, 3, ""},
		{"none found", nil, []string{missing}, 0, ""},
		{"SSL_CERT_FILE missing", map[string]string{"SSL_CERT_FILE": missing}, []string{sysFile}, 0, "SSL_CERT_FILE"},
		{"SSL_CERT_FILE without certs", map[string]string{"SSL_CERT_FILE": emptyFile}, []string{sysFile}, 0, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadRoots(envOf(tt.env), tt.candidates)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %v, want one containing %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := countCerts(got.PEM); n != tt.certs || len(got.Certs) != tt.certs {
				t.Errorf("%d certificates in the PEM, %d parsed, want %d", n, len(got.Certs), tt.certs)
			}
			if bytes.Contains(got.PEM, []byte("PRIVATE KEY")) || bytes.Contains(got.PEM, []byte("comment")) {
				t.Error("non-certificate content passed through")
			}
			// The pool holds exactly what the PEM does, in the same order.
			rest := got.PEM
			for i, c := range got.Certs {
				var b *pem.Block
				b, rest = pem.Decode(rest)
				if b == nil || !bytes.Equal(b.Bytes, c.Raw) {
					t.Fatalf("certificate %d of the PEM is not the parsed one", i)
				}
				if _, err := c.Verify(x509.VerifyOptions{Roots: got.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
					t.Fatalf("certificate %d does not verify against the pool: %v", i, err)
				}
			}
		})
	}
}

func TestTrustedRootsSystem(t *testing.T) {
	// Whatever this machine has, the public entry point must not fail, and
	// must ignore the process's own SSL_CERT_FILE in favour of lookupEnv.
	t.Setenv("SSL_CERT_FILE", filepath.Join(t.TempDir(), "missing"))
	if _, err := LoadRoots(envOf(nil)); err != nil {
		t.Fatal(err)
	}
}

func TestReadPEMCerts(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	der := mustNew(t, Options{}).Certificate().Raw
	tests := []struct {
		name   string
		path   string
		certs  int
		errHas string
	}{
		{"one", write("one.pem", pemOf(t, 1)), 1, ""},
		{"two with text", write("two.pem", append([]byte("Subject: corp\n"), pemOf(t, 2)...)), 2, ""},
		{"der", write("der.crt", der), 0, "holds no PEM certificate"},
		{"empty", write("empty.pem", nil), 0, "holds no PEM certificate"},
		{"broken cert", write("bad.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")), 0, "do not parse"},
		{"missing", filepath.Join(dir, "nope.pem"), 0, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadPEMCerts(tt.path)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %v, want one containing %q", err, tt.errHas)
				}
				if !strings.Contains(err.Error(), tt.path) {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := countCerts(got); n != tt.certs {
				t.Errorf("%d certificates, want %d", n, tt.certs)
			}
		})
	}
}
