package testsupport

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// TestCA: a leaf verifies against the CA's pool for each of its names and for
// no other, and PEM holds the CA certificate.
func TestCA(t *testing.T) {
	ca, err := NewCA("testsupport CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf("api.example.test", "*.cdn.example.test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"api.example.test", true},
		{"a.cdn.example.test", true},
		{"other.example.test", false},
	} {
		_, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: tc.name})
		if (err == nil) != tc.ok {
			t.Errorf("%s: verify error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	other, err := NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: other.Pool, DNSName: "api.example.test"}); err == nil {
		t.Error("a leaf verified against another CA")
	}
	if b, _ := pem.Decode(ca.PEM()); b == nil || string(b.Bytes) != string(ca.Cert.Raw) {
		t.Error("PEM does not hold the CA certificate")
	}
}
