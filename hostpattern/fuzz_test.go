package hostpattern

import (
	"strings"
	"testing"
)

// FuzzPattern checks the properties the configuration, the proxy and the CA
// rely on: one normal form, credential patterns never IPs, matching that
// stays inside the pattern's meaning and inside its X.509 constraint, and a
// Covers that never claims more than matching grants.
func FuzzPattern(f *testing.F) {
	f.Add("*.example.com", "x.example.com", "a.example.com", 443)
	f.Add("api.example.com:8443", "api.example.com", "API.EXAMPLE.COM.", 8443)
	f.Add("*.Example.COM:8443", "*.a.example.com:8443", "b.a.example.com", 8443)
	f.Add("127.0.0.1", "::1", "::ffff:127.0.0.1", 80)
	f.Add("[::1]:8443", "a.com", "[::1]", 8443)
	f.Fuzz(func(t *testing.T, pattern, other, host string, port int) {
		p, err := ParseEgress(pattern)
		cp, cerr := Parse(pattern)
		if err != nil {
			if cerr == nil {
				t.Fatalf("Parse accepted %q, ParseEgress refused it: %v", pattern, err)
			}
			return
		}
		if q, err := ParseEgress(p.String()); err != nil || q != p {
			t.Fatalf("%q: normal form %q parses to %q, %v", pattern, p.String(), q, err)
		}
		if cerr == nil && cp != p {
			t.Fatalf("%q: Parse %q and ParseEgress %q disagree", pattern, cp, p)
		}
		if (cerr == nil) == p.IsIP() {
			t.Fatalf("%q: IP=%v but Parse error %v", pattern, p.IsIP(), cerr)
		}
		if p.MatchTLS(host, port) && !p.MatchAny(host, port) {
			t.Fatalf("%q matches %q:%d for TLS but not as a rule", pattern, host, port)
		}
		if p.MatchAny(host, port) && !p.MatchName(host) {
			t.Fatalf("%q matches %q:%d but not its name", pattern, host, port)
		}
		if p.MatchName(host) && !p.IsIP() {
			h := NormalizeHost(host)
			name := strings.TrimPrefix(p.Name(), "*.")
			if p.Wildcard() && (h == name || !strings.HasSuffix(h, "."+name)) {
				t.Fatalf("wildcard %q matched %q", pattern, host)
			}
			if !p.Wildcard() && h != name {
				t.Fatalf("exact %q matched %q", pattern, host)
			}
			c, err := p.Constraint()
			if err != nil || !permits(c, h) {
				t.Fatalf("%q matches %q but its constraint %q (%v) does not permit it", pattern, h, c, err)
			}
		}
		if o, err := ParseEgress(other); err == nil && p.Covers(o) && o.MatchTLS(host, port) && !p.MatchTLS(host, port) {
			t.Fatalf("%q covers %q, which matches %q:%d alone", pattern, other, host, port)
		}
	})
}

// permits is RFC 5280's DNS name constraint as Go, OpenSSL and GnuTLS apply
// it: ".d" permits names below d, "d" permits d and names below it.
func permits(constraint, host string) bool {
	if strings.HasPrefix(constraint, ".") {
		return len(host) > len(constraint) && strings.HasSuffix(host, constraint)
	}
	return host == constraint || strings.HasSuffix(host, "."+constraint)
}
