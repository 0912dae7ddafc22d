package ca

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// TrustedRoots returns, as PEM, the roots agentvault itself trusts: the
// certificates in the file named by agentvault's SSL_CERT_FILE if set, else
// those of the first system bundle found. With neither it returns nothing
// and no error: the child then trusts only the session CA, which is enough
// for MITM'd hosts. Blocks that are not certificates, or that Go cannot
// parse (and so agentvault does not trust either), are left out.
func TrustedRoots(lookupEnv func(string) (string, bool)) ([]byte, error) {
	return trustedRoots(lookupEnv, systemBundles)
}

func trustedRoots(lookupEnv func(string) (string, bool), candidates []string) ([]byte, error) {
	if p, ok := lookupEnv("SSL_CERT_FILE"); ok && p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("SSL_CERT_FILE: %w", err)
		}
		out, _ := pemCerts(data)
		if len(out) == 0 {
			return nil, fmt.Errorf("SSL_CERT_FILE %s holds no PEM certificate", p)
		}
		return out, nil
	}
	for _, p := range candidates {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			// Same as crypto/x509: an unreadable candidate is skipped.
			continue
		}
		out, _ := pemCerts(data)
		return out, nil
	}
	return nil, nil
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
	var buf bytes.Buffer
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) != 0 {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			bad++
			continue
		}
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})
	}
	return buf.Bytes(), bad
}
