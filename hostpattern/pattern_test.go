package hostpattern

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, want string
		errHas   string // "" = accepted
	}{
		{"api.github.com", "api.github.com", ""},
		{"API.GitHub.COM", "api.github.com", ""},
		{" b.test ", "b.test", ""},
		{"*.githubusercontent.com", "*.githubusercontent.com", ""},
		{"localhost", "localhost", ""},
		{"api.example.com:8443", "api.example.com:8443", ""},
		{"*.Example.com:8443", "*.example.com:8443", ""},
		{"my_host.example.com", "my_host.example.com", ""},
		{"_dmarc.example.com", "_dmarc.example.com", ""},
		{"x-y.test", "x-y.test", ""},
		{"1password.com", "1password.com", ""},
		{"", "", "empty host pattern"},
		{"*", "", "wildcard is only allowed"},
		{"*.", "", "empty name"},
		{"a*.example.com", "", "wildcard is only allowed"},
		{"api.*.example.com", "", "wildcard is only allowed"},
		{"*.*.example.com", "", "wildcard is only allowed"},
		{"**.example.com", "", "wildcard is only allowed"},
		{"example.com.", "", "trailing dot"},
		{"*.example.com.:443", "", "trailing dot"},
		{"a..com", "", "empty label"},
		{".a.com", "", "empty label"},
		{"-a.com", "", "starts or ends with '-'"},
		{"a-.com", "", "starts or ends with '-'"},
		{"a b.com", "", "not a URL"},
		{"https://a.com", "", "not a URL"},
		{"a.com/path", "", "not a URL"},
		{"user@a.com", "", "not a URL"},
		{"a/b", "", "not a URL"},
		{"a.com:0", "", "bad port"},
		{"a.com:08443", "", "bad port"},
		{"a.com:+443", "", "bad port"},
		{"a.com:65536", "", "bad port"},
		{"a.com:99999", "", "bad port"},
		{"a.com:http", "", "bad port"},
		{"a.com:", "", "bad port"},
		{"10.0.0.1", "", "not credential hosts"},
		{"10.0.0.1:443", "", "not credential hosts"},
		{"::1", "", "not credential hosts"},
		{"[::1]:443", "", "not credential hosts"},
		{"[a.com]:443", "", "invalid character"},
		{"1.2.3", "", "numeric top-level label"},
		{"ümlaut.de", "", "punycode"},
		{"\u212aey.example.com", "", "punycode"}, // Kelvin sign, which ToLower makes "k"
		{"a\x00.com", "", "invalid character"},
		{strings.Repeat("a", 64) + ".com", "", "label longer than 63"},
		{strings.Repeat("a.", 127) + "com", "", "longer than 253"},
	}
	for _, tt := range tests {
		p, err := Parse(tt.in)
		if tt.errHas == "" {
			if err != nil || p.String() != tt.want {
				t.Errorf("Parse(%q) = %q, %v; want %q", tt.in, p, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("Parse(%q) = %q, %v; want an error with %q", tt.in, p, err, tt.errHas)
		}
	}
}

func TestParseEgress(t *testing.T) {
	tests := []struct {
		in, want string
		errHas   string
	}{
		{"registry.npmjs.org", "registry.npmjs.org", ""},
		{"*.PyPI.org", "*.pypi.org", ""},
		{"127.0.0.1", "127.0.0.1", ""},
		{"10.0.0.1:8080", "10.0.0.1:8080", ""},
		{"::1", "::1", ""},
		{"[::1]:8443", "[::1]:8443", ""},
		{"0:0::1", "::1", ""},
		{"169.254.169.254", "169.254.169.254", ""},
		{"", "", "empty host pattern"},
		{"*", "", "wildcard"},
		{"a.*.com", "", "wildcard"},
		{"[::1]", "", "not an IP address with a port"},
		{"[::1]:0", "", "bad port"},
		{"[1.2.3.4]:80", "", "not an IP address with a port"},
		{"[fe80::1%eth0]:80", "", "not an IP address with a port"},
		{"fe80::1%eth0", "", "zone"},
		{"1.2.3.4:99999", "", "bad port"},
		{"1.2.3.4:080", "", "bad port"},
		{"http://a.com", "", "not a URL"},
		{"1.2.3", "", "numeric top-level label"},
		{"a.com.", "", "trailing dot"},
	}
	for _, tt := range tests {
		p, err := ParseEgress(tt.in)
		if tt.errHas == "" {
			if err != nil || p.String() != tt.want {
				t.Errorf("ParseEgress(%q) = %q, %v; want %q", tt.in, p, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("ParseEgress(%q) = %q, %v; want an error with %q", tt.in, p, err, tt.errHas)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern string
		host    string
		port    int
		tls     bool
		any     bool
	}{
		{"api.example.com", "api.example.com", 443, true, true},
		{"api.example.com", "API.example.com.", 443, true, true},
		{"api.example.com", "api.example.com", 8443, false, true},
		{"api.example.com:8443", "api.example.com", 8443, true, true},
		{"api.example.com:8443", "api.example.com", 443, false, false},
		{"*.example.com", "a.example.com", 443, true, true},
		{"*.example.com", "a.b.example.com", 443, true, true},
		{"*.example.com", "example.com", 443, false, false},
		{"*.example.com", "example.com.", 443, false, false},
		{"*.example.com", ".example.com", 443, false, false},
		{"*.example.com", "evilexample.com", 443, false, false},
		{"*.example.com", "a.example.com..", 443, false, false},
		{"api.example.com", "api.example.com.evil.test", 443, false, false},
		{"api.example.com", "x.api.example.com", 443, false, false},
		{"10.0.0.1", "10.0.0.1", 80, false, true},
		{"10.0.0.1", "::ffff:10.0.0.1", 80, false, true},
		{"10.0.0.1:8080", "10.0.0.1", 8080, false, true},
		{"10.0.0.1:8080", "10.0.0.1", 80, false, false},
		{"::1", "0:0:0:0:0:0:0:1", 1, false, true},
		{"[::1]:8443", "[::1]", 8443, false, true},
		{"10.0.0.1", "10.0.0.10", 80, false, false},
		{"10.0.0.1", "ten.example", 80, false, false},
	}
	for _, tt := range tests {
		p, err := ParseEgress(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.MatchTLS(tt.host, tt.port); got != tt.tls {
			t.Errorf("%s vs %s:%d: MatchTLS = %v", tt.pattern, tt.host, tt.port, got)
		}
		if got := p.MatchAny(tt.host, tt.port); got != tt.any {
			t.Errorf("%s vs %s:%d: MatchAny = %v", tt.pattern, tt.host, tt.port, got)
		}
	}
	if (Pattern{}).MatchName("") || (Pattern{}).MatchAny("", 0) {
		t.Error("the zero Pattern matched")
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		outer, inner string
		want         bool
	}{
		{"a.com", "a.com", true},
		{"a.com", "b.com", false},
		{"*.a.com", "x.a.com", true},
		{"*.a.com", "y.x.a.com", true},
		{"*.a.com", "*.x.a.com", true},
		{"*.a.com", "*.a.com", true},
		{"*.a.com", "a.com", false},
		{"a.com", "*.a.com", false},
		{"*.a.com", "xa.com", false},
		{"*.a.com", "*.com", false},
		{"x.a.com", "*.a.com", false},
		{"a.com", "a.com:443", true},
		{"a.com:8443", "a.com", false},
		{"*.a.com:8443", "x.a.com:8443", true},
		{"*.a.com:8443", "x.a.com", false},
		{"10.0.0.1", "10.0.0.1", false},
		{"10.0.0.1", "a.com", false},
	}
	for _, tt := range tests {
		outer, err1 := ParseEgress(tt.outer)
		inner, err2 := ParseEgress(tt.inner)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if got := outer.Covers(inner); got != tt.want {
			t.Errorf("%q covers %q = %v", tt.outer, tt.inner, got)
		}
	}
}

func TestConstraint(t *testing.T) {
	tests := []struct{ in, want string }{
		{"api.example.com", "api.example.com"},
		{"*.example.com", ".example.com"},
		{"API.Example.COM:8443", "api.example.com"},
		{"*.example.com:443", ".example.com"},
	}
	for _, tt := range tests {
		p, err := Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Constraint(); err != nil || got != tt.want {
			t.Errorf("Constraint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, s := range []string{"10.0.0.1", "[::1]:443"} {
		p, err := ParseEgress(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Constraint(); !errors.Is(err, ErrIP) {
			t.Errorf("Constraint(%q): %v, want ErrIP", s, err)
		}
	}
	if _, err := (Pattern{}).Constraint(); err == nil {
		t.Error("the zero Pattern has a constraint")
	}
}
