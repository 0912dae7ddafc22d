// Package ca creates the per-session certificate authority that the proxy
// signs its MITM leaves with, and the files that make the child trust it.
//
// The CA key is generated in memory and never serialized: nothing in this
// package marshals a private key, and no method hands out more than a
// crypto.Signer.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// MaxLifetime caps the CA's validity: a session CA outliving a day is a
// standing trust anchor, which is what the per-session design avoids.
const MaxLifetime = 24 * time.Hour

// clockSkew backdates NotBefore so a client whose clock is slightly behind
// still accepts the CA and its leaves.
const clockSkew = time.Minute

// nothingName is the only name a CA built for no hosts permits: the
// .invalid TLD is reserved (RFC 6761) and never resolves, so the CA is
// useless for impersonation while remaining a well-formed constrained CA.
const nothingName = "nothing.agentvault.invalid"

// Options describes the session CA.
type Options struct {
	// Hosts are the credential host patterns the CA may sign for:
	// "api.example.com" or "*.example.com", optionally with a ":port" suffix,
	// which is ignored. IP addresses are refused (they are not credential
	// hosts, and every IP range is excluded).
	Hosts []string
	// Unconstrained permits every DNS name (egress.inspect: all under
	// default: allow, where any host may be MITM'd). Every IP range stays
	// excluded: the proxy never intercepts an IP target, so the CA has no
	// reason to vouch for one.
	Unconstrained bool
	// Lifetime of the CA; 0 means MaxLifetime, longer values are capped.
	Lifetime time.Duration
	// SessionID goes into the subject so a user can tell sessions apart.
	SessionID string
}

// Authority is a session CA whose key lives only in this process.
type Authority struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// New generates a fresh session CA.
func New(o Options) (*Authority, error) {
	lifetime := o.Lifetime
	switch {
	case lifetime < 0:
		return nil, fmt.Errorf("session CA lifetime must not be negative")
	case lifetime == 0 || lifetime > MaxLifetime:
		lifetime = MaxLifetime
	}
	var permitted []string
	if !o.Unconstrained {
		var err error
		if permitted, err = permittedDomains(o.Hosts); err != nil {
			return nil, err
		}
		if len(permitted) == 0 {
			permitted = []string{nothingName}
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate session CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "agentvault session " + o.SessionID,
			Organization: []string{"agentvault"},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	tmpl.ExcludedIPRanges = []*net.IPNet{
		{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
	}
	if !o.Unconstrained {
		tmpl.PermittedDNSDomainsCritical = true
		tmpl.PermittedDNSDomains = permitted
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create session CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse session CA certificate: %w", err)
	}
	return &Authority{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// Certificate is the CA certificate (for martian's mitm.NewConfig).
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// Signer is the CA key, for signing leaves. It stays in memory: nothing in
// agentvault writes or marshals it (the concrete key is an *ecdsa.PrivateKey
// a caller could assert to, so that promise is the module's, not the type's).
func (a *Authority) Signer() crypto.Signer { return a.key }

// CertPEM is the CA certificate in PEM form (a fresh copy).
func (a *Authority) CertPEM() []byte { return append([]byte(nil), a.certPEM...) }

// NotAfter is when the CA expires; leaves must not outlive it.
func (a *Authority) NotAfter() time.Time { return a.cert.NotAfter }

func randomSerial() (*big.Int, error) {
	// 128 random bits, as CAs commonly use; Int never returns a negative.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}
