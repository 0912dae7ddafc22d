package proxy

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/agentvault/agentvault/ca"
)

// The session CA is built from Intercepted and the proxy decides per
// connection with intercepts: every connection the proxy decrypts must get a
// leaf the child accepts, and a constrained CA must not vouch for a name the
// proxy only tunnels.
func TestInterceptionAgreesWithCA(t *testing.T) {
	creds := []*Credential{
		{Name: "a", Hosts: []string{"api.example.test"}, Secret: func() string { return "s" }},
		{Name: "w", Hosts: []string{"*.wild.example.test"}, Secret: func() string { return "s" }},
	}
	type target struct {
		host      string
		port      int
		admitted  bool // the egress rules let it through
		decrypted bool // the proxy terminates TLS
		caSigns   bool // a leaf from the session CA verifies for host
	}
	tests := []struct {
		name    string
		egress  Egress
		wantAny bool
		targets []target
	}{
		{"credentialed only", Egress{}, false, []target{
			{"api.example.test", 443, true, true, true},
			{"x.wild.example.test", 443, true, true, true},
			{"other.example.test", 443, true, false, false},
			{"10.0.0.1", 443, true, false, false},
		}},
		{"inspect all under default deny", Egress{DefaultDeny: true, InspectAll: true, Allow: []string{"registry.example.test", "*.cdn.example.test", "10.1.2.3"}}, false, []target{
			{"api.example.test", 443, true, true, true},
			{"registry.example.test", 443, true, true, true},
			{"a.cdn.example.test", 443, true, true, true},
			{"10.1.2.3", 443, true, false, false},
			{"other.example.test", 443, false, false, false},
		}},
		{"inspect all under default allow", Egress{InspectAll: true, Deny: []string{"denied.example.test"}}, true, []target{
			{"api.example.test", 443, true, true, true},
			{"anything.example.test", 443, true, true, true},
			{"denied.example.test", 443, false, false, true},
			// Unconstrained still excludes every address (see package ca),
			// and the proxy only tunnels them.
			{"10.0.0.1", 443, true, false, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Intercepted(creds, tt.egress)
			if in.Any != tt.wantAny {
				t.Fatalf("Any = %v, want %v", in.Any, tt.wantAny)
			}
			pol, err := compilePolicy(creds, tt.egress, nil)
			if err != nil {
				t.Fatal(err)
			}
			authority, err := ca.New(ca.Options{Hosts: in.Hosts, Unconstrained: in.Any, Lifetime: time.Hour, SessionID: "av-test"})
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(authority.Certificate())
			for _, tg := range tt.targets {
				admitted := pol.egress(tg.host, tg.port).allowed
				decrypted := admitted && pol.intercepts(tg.host, tg.port)
				if admitted != tg.admitted || decrypted != tg.decrypted {
					t.Errorf("%s: admitted %v decrypted %v, want %v %v", tg.host, admitted, decrypted, tg.admitted, tg.decrypted)
				}
				leaf, err := authority.Leaf(tg.host, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				cert, err := x509.ParseCertificate(leaf.Certificate[0])
				if err != nil {
					t.Fatal(err)
				}
				_, verr := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: tg.host})
				if signs := verr == nil; signs != tg.caSigns {
					t.Errorf("%s: CA signs %v (%v), want %v", tg.host, signs, verr, tg.caSigns)
				}
				if decrypted && verr != nil {
					t.Errorf("%s is decrypted but the child would refuse its leaf: %v", tg.host, verr)
				}
			}
		})
	}
}
