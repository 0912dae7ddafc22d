package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"time"
)

// defaultLeafValidity matches what martian gives its leaves.
const defaultLeafValidity = time.Hour

// Leaf issues an ECDSA P-256 server certificate for host (a DNS name or an
// IP address) signed by the session CA. It does not check the CA's name
// constraints on purpose: tests use it to show that verifiers refuse leaves
// outside them. The leaf never outlives the CA.
func (a *Authority) Leaf(host string, validity time.Duration) (*tls.Certificate, error) {
	return IssueLeaf(a.cert, a.key, host, validity)
}

// IssueLeaf issues an ECDSA P-256 server certificate for host signed by
// caCert's key, valid for validity (defaultLeafValidity when <= 0) but never
// beyond the CA's own NotAfter. The chain holds the leaf and the CA.
func IssueLeaf(caCert *x509.Certificate, caKey crypto.Signer, host string, validity time.Duration) (*tls.Certificate, error) {
	if host == "" {
		return nil, fmt.Errorf("leaf: empty host")
	}
	if validity <= 0 {
		validity = defaultLeafValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("leaf: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notBefore := now.Add(-clockSkew)
	if notBefore.Before(caCert.NotBefore) {
		notBefore = caCert.NotBefore
	}
	notAfter := now.Add(validity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("leaf: sign: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("leaf: parse: %w", err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, caCert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}
