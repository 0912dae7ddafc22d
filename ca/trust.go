package ca

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"runtime"
	"sync"
)

// systemBundles are the single-file root bundles Go's crypto/x509 looks for
// on Linux, plus the usual macOS and BSD locations; the first that exists is
// what agentvault itself trusts when SSL_CERT_FILE is not set.
var systemBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
	"/etc/ssl/cert.pem",                                 // Alpine, macOS
	"/usr/local/etc/ssl/cert.pem",                       // FreeBSD
	"/usr/local/share/certs/ca-root-nss.crt",            // FreeBSD
	"/etc/openssl/certs/ca-certificates.crt",            // NetBSD
}

// Roots are the roots agentvault itself trusts: the certificates in the
// file named by agentvault's SSL_CERT_FILE if set, else those of the first
// system bundle found. With neither there are none, and no error: the child
// then trusts only the session CA, which is enough for MITM'd hosts. Blocks
// that are not certificates, or that Go cannot parse (and so agentvault does
// not trust either), are left out.
type Roots struct {
	// PEM is every certificate, re-encoded: the start of the child's bundle.
	PEM []byte
	// Certs are the same certificates, parsed.
	Certs []*x509.Certificate
}

// Pool returns a new pool of the roots, without parsing them again.
func (r *Roots) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range r.Certs {
		pool.AddCert(c)
	}
	return pool
}

// LoadRoots reads and parses the roots (see Roots). Parsing a system bundle
// is most of a session's start-up work, so it is done once, for both the
// child's bundle and the proxy's pool, on every core.
func LoadRoots(lookupEnv func(string) (string, bool)) (*Roots, error) {
	return loadRoots(lookupEnv, systemBundles)
}

func loadRoots(lookupEnv func(string) (string, bool), candidates []string) (*Roots, error) {
	if p, ok := lookupEnv("SSL_CERT_FILE"); ok && p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("SSL_CERT_FILE: %w", err)
		}
		r, _ := parseRoots(data)
		if len(r.Certs) == 0 {
			return nil, fmt.Errorf("SSL_CERT_FILE %s holds no PEM certificate", p)
		}
		return r, nil
	}
	for _, p := range candidates {
		data, err := os.ReadFile(p)
		if err != nil {
			// Same as crypto/x509: a missing or unreadable candidate is skipped.
			continue
		}
		r, _ := parseRoots(data)
		return r, nil
	}
	return &Roots{}, nil
}

// ReadPEMCerts reads a --upstream-ca file and returns its certificates as
// PEM. It fails if the file holds no certificate or a certificate that does
// not parse, so a wrong path or a DER file is reported instead of ignored.
func ReadPEMCerts(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	out, bad := pemCerts(data)
	if bad > 0 {
		return nil, fmt.Errorf("CA file %s: %d certificate block(s) do not parse", path, bad)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate (a DER file must be converted to PEM)", path)
	}
	return out, nil
}

// pemCerts re-encodes the parseable CERTIFICATE blocks of data, dropping
// comments, keys and other block types, and counts the certificate blocks
// that failed to parse.
func pemCerts(data []byte) (out []byte, bad int) {
	r, bad := parseRoots(data)
	return r.PEM, bad
}

// parseRoots parses the CERTIFICATE blocks of data, in their order, on as
// many goroutines as there are cores, and counts those that failed to parse.
func parseRoots(data []byte) (*Roots, int) {
	var ders [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" && len(b.Headers) == 0 {
			ders = append(ders, b.Bytes)
		}
	}
	certs := make([]*x509.Certificate, len(ders))
	workers := min(runtime.GOMAXPROCS(0), 4, len(ders))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(ders); i += workers {
				certs[i], _ = x509.ParseCertificate(ders[i])
			}
		}(w)
	}
	wg.Wait()
	r := &Roots{}
	var buf bytes.Buffer
	bad := 0
	for i, c := range certs {
		if c == nil {
			bad++
			continue
		}
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: ders[i]})
		r.Certs = append(r.Certs, c)
	}
	r.PEM = buf.Bytes()
	return r, bad
}
