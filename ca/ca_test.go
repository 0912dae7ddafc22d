package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}

func mustNew(t *testing.T, o Options) *Authority {
	t.Helper()
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNewCertificate(t *testing.T) {
	before := time.Now()
	a := mustNew(t, Options{Hosts: []string{"api.example.com", "*.example.org"}, Lifetime: 2 * time.Hour, SessionID: "av-1234"})
	c := a.Certificate()

	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v maxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature; c.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, want)
	}
	if c.Subject.CommonName != "agentvault session av-1234" {
		t.Errorf("CN = %q", c.Subject.CommonName)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", c.PublicKey)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %v is not a positive random number", c.SerialNumber)
	}
	if d := before.Sub(c.NotBefore); d < 59*time.Second || d > 2*time.Minute {
		t.Errorf("NotBefore is %v before now, want about 1m", d)
	}
	if d := c.NotAfter.Sub(before); d < 2*time.Hour-time.Minute || d > 2*time.Hour+time.Minute {
		t.Errorf("NotAfter is %v after now, want 2h", d)
	}
	if !a.NotAfter().Equal(c.NotAfter) {
		t.Errorf("NotAfter() = %v, cert says %v", a.NotAfter(), c.NotAfter)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("no subject key id (strict verifiers want one)")
	}

	if !c.PermittedDNSDomainsCritical {
		t.Error("name constraints not critical")
	}
	for _, e := range c.Extensions {
		if e.Id.Equal(oidNameConstraints) && !e.Critical {
			t.Error("name constraints extension not marked critical")
		}
	}
	if want := []string{".example.org", "api.example.com"}; !reflect.DeepEqual(c.PermittedDNSDomains, want) {
		t.Errorf("PermittedDNSDomains = %q, want %q", c.PermittedDNSDomains, want)
	}
	var excluded []string
	for _, n := range c.ExcludedIPRanges {
		excluded = append(excluded, n.String())
	}
	if want := []string{"0.0.0.0/0", "::/0"}; !reflect.DeepEqual(excluded, want) {
		t.Errorf("ExcludedIPRanges = %q, want %q", excluded, want)
	}

	// CertPEM round-trips to the same certificate, and is a copy.
	p := a.CertPEM()
	b, rest := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 || string(b.Bytes) != string(c.Raw) {
		t.Fatal("CertPEM is not the PEM form of Certificate()")
	}
	p[0] = 'X'
	if a.CertPEM()[0] == 'X' {
		t.Error("CertPEM returns the internal buffer")
	}

	// Signer is the certificate's key.
	if !a.Signer().Public().(*ecdsa.PublicKey).Equal(c.PublicKey) {
		t.Error("Signer does not match the certificate")
	}
}

func TestFreshKeyPerSession(t *testing.T) {
	a, b := mustNew(t, Options{}), mustNew(t, Options{})
	if a.Signer().Public().(*ecdsa.PublicKey).Equal(b.Signer().Public()) {
		t.Error("two sessions share a key")
	}
	if a.Certificate().SerialNumber.Cmp(b.Certificate().SerialNumber) == 0 {
		t.Error("two sessions share a serial number")
	}
}

func TestLifetime(t *testing.T) {
	tests := []struct {
		in, want time.Duration
		err      bool
	}{
		{0, 24 * time.Hour, false},
		{time.Hour, time.Hour, false},
		{24 * time.Hour, 24 * time.Hour, false},
		{25 * time.Hour, 24 * time.Hour, false},
		{30 * 24 * time.Hour, 24 * time.Hour, false},
		{-time.Second, 0, true},
	}
	for _, tt := range tests {
		now := time.Now()
		a, err := New(Options{Lifetime: tt.in})
		if tt.err {
			if err == nil {
				t.Errorf("Lifetime %v: want an error", tt.in)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if d := a.NotAfter().Sub(now); d < tt.want-time.Minute || d > tt.want+time.Minute {
			t.Errorf("Lifetime %v: CA valid for %v, want %v", tt.in, d, tt.want)
		}
	}
}

func TestLeafNeverOutlivesCA(t *testing.T) {
	a := mustNew(t, Options{Hosts: []string{"a.test"}, Lifetime: time.Hour})
	tests := []struct {
		validity time.Duration
		atMost   time.Time
	}{
		{0, a.NotAfter()},
		{10 * time.Minute, time.Now().Add(11 * time.Minute)},
		{48 * time.Hour, a.NotAfter()},
	}
	for _, tt := range tests {
		l, err := a.Leaf("a.test", tt.validity)
		if err != nil {
			t.Fatal(err)
		}
		if l.Leaf.NotAfter.After(tt.atMost) || l.Leaf.NotAfter.After(a.NotAfter()) {
			t.Errorf("validity %v: leaf NotAfter %v, want at most %v", tt.validity, l.Leaf.NotAfter, tt.atMost)
		}
		if l.Leaf.NotBefore.Before(a.Certificate().NotBefore) {
			t.Errorf("validity %v: leaf starts before the CA", tt.validity)
		}
	}
}

func TestPermittedDomains(t *testing.T) {
	tests := []struct {
		hosts  []string
		want   []string
		errHas string
	}{
		{[]string{"api.example.com"}, []string{"api.example.com"}, ""},
		{[]string{"*.example.com"}, []string{".example.com"}, ""},
		{[]string{"API.Example.COM:8443", "api.example.com", "api.example.com:443"}, []string{"api.example.com"}, ""},
		{[]string{"api.example.com."}, nil, "trailing dot"},
		{[]string{"*.example.com:443", " b.test "}, []string{".example.com", "b.test"}, ""},
		{[]string{"_dmarc.example.com", "x-y.test"}, []string{"_dmarc.example.com", "x-y.test"}, ""},
		{nil, nil, ""},
		{[]string{"127.0.0.1"}, nil, "is an IP address"},
		{[]string{"127.0.0.1:443"}, nil, "is an IP address"},
		{[]string{"::1"}, nil, "is an IP address"},
		{[]string{"[::1]:443"}, nil, "is an IP address"},
		{[]string{"*"}, nil, "wildcard is only allowed"},
		{[]string{"a*.example.com"}, nil, "wildcard is only allowed"},
		{[]string{"*.*.example.com"}, nil, "wildcard is only allowed"},
		{[]string{""}, nil, "empty host pattern"},
		{[]string{"a..b"}, nil, "empty label"},
		{[]string{"example.com:https"}, nil, "bad port"},
		{[]string{"example.com:0"}, nil, "bad port"},
		{[]string{"example.com:99999"}, nil, "bad port"},
		{[]string{"-a.example.com"}, nil, "starts or ends with '-'"},
		{[]string{"1.2.3"}, nil, "numeric top-level label"},
		{[]string{"bücher.example"}, nil, "punycode"},
		{[]string{"a/b"}, nil, "not a URL"},
		{[]string{"a%b.example"}, nil, "invalid character"},
	}
	for _, tt := range tests {
		got, err := permittedDomains(tt.hosts)
		if tt.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("%q: error %v, want one containing %q", tt.hosts, err, tt.errHas)
			}
			if _, nerr := New(Options{Hosts: tt.hosts}); nerr == nil {
				t.Errorf("%q: New accepted it", tt.hosts)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %q, %v; want %q", tt.hosts, got, err, tt.want)
		}
	}
}

func TestUnconstrainedAndEmpty(t *testing.T) {
	// Every DNS name, no IP address: the proxy never intercepts an IP
	// target. Not critical, so a client that cannot read name constraints
	// still accepts the CA for names, which is all it is used for.
	u := mustNew(t, Options{Unconstrained: true, Hosts: []string{"ignored.test"}}).Certificate()
	if len(u.PermittedDNSDomains) != 0 || len(u.ExcludedIPRanges) != 2 {
		t.Errorf("unconstrained CA constraints: %q %v", u.PermittedDNSDomains, u.ExcludedIPRanges)
	}
	for _, e := range u.Extensions {
		if e.Id.Equal(oidNameConstraints) && e.Critical {
			t.Error("unconstrained CA's name constraints are critical")
		}
	}
	e := mustNew(t, Options{}).Certificate()
	if !reflect.DeepEqual(e.PermittedDNSDomains, []string{nothingName}) || len(e.ExcludedIPRanges) != 2 {
		t.Errorf("empty CA constraints: %q %v", e.PermittedDNSDomains, e.ExcludedIPRanges)
	}
}

// TestKeyNeverSerialized keeps the package free of anything that could write
// the CA key: no marshalling call and no private-key PEM type in its source.
func TestKeyNeverSerialized(t *testing.T) {
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{"MarshalECPrivateKey", "MarshalPKCS8PrivateKey", "MarshalPKCS1PrivateKey", "PRIVATE KEY", "encoding/gob"}
	n := 0
	for _, f := range files {
		name := f.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		n++
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range banned {
			if strings.Contains(string(src), b) {
				t.Errorf("%s mentions %s", name, b)
			}
		}
	}
	if n == 0 {
		t.Fatal("no source files found")
	}
}
