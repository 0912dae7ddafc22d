package config

import "testing"

func TestHostPatterns(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"api.github.com", "api.github.com", true},
		{"API.GitHub.COM", "api.github.com", true},
		{"*.githubusercontent.com", "*.githubusercontent.com", true},
		{"localhost", "localhost", true},
		{"api.example.com:8443", "api.example.com:8443", true},
		{"*.example.com:8443", "*.example.com:8443", true},
		{"my_host.example.com", "my_host.example.com", true},
		{"", "", false},
		{"*", "", false},
		{"*.", "", false},
		{"a*.example.com", "", false},
		{"api.*.example.com", "", false},
		{"**.example.com", "", false},
		{"example.com.", "", false},
		{"a..com", "", false},
		{"-a.com", "", false},
		{"a-.com", "", false},
		{"a b.com", "", false},
		{"https://a.com", "", false},
		{"a.com/path", "", false},
		{"a.com:0", "", false},
		{"a.com:65536", "", false},
		{"a.com:http", "", false},
		{"a.com:", "", false},
		{"10.0.0.1", "", false},
		{"10.0.0.1:443", "", false},
		{"::1", "", false},
		{"[::1]:443", "", false},
		{"1.2.3", "", false},
		{"ümlaut.de", "", false},
		{"\u212aey.example.com", "", false}, // Kelvin sign: full case folding made it "key.example.com"
	}
	for _, tt := range tests {
		got, err := NormalizeHostPattern(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeHostPattern(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestEgressPatterns(t *testing.T) {
	for _, ok := range []string{"registry.npmjs.org", "*.pypi.org", "127.0.0.1", "10.0.0.1:8080", "::1", "[::1]:8443", "169.254.169.254"} {
		if err := ValidEgressPattern(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "a.*.com", "[::1]", "[::1]:0", "1.2.3.4:99999", "http://a.com", "1.2.3", "[1.2.3.4]:80", "\u212a.example.com"} {
		if err := ValidEgressPattern(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestPatternCovers: the string form of hostpattern.Pattern.Covers (tested
// there); a pattern that does not parse covers nothing.
func TestPatternCovers(t *testing.T) {
	tests := []struct {
		outer, inner string
		want         bool
	}{
		{"*.a.com", "*.x.a.com", true},
		{"*.a.com", "a.com", false},
		{"a.com", "a.com:443", true},
		{"*.a.com", "10.0.0.1", false},
		{"a..com", "a..com", false},
	}
	for _, tt := range tests {
		if got := patternCovers(tt.outer, tt.inner); got != tt.want {
			t.Errorf("patternCovers(%q, %q) = %v", tt.outer, tt.inner, got)
		}
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"vault:secret/a#f", Ref{"vault", "secret/a#f"}, true},
		{"env:X", Ref{"env", "X"}, true},
		{"file:/run/secrets/x", Ref{"file", "/run/secrets/x"}, true},
		{"aws:prod/db?version_stage=AWSPREVIOUS#password", Ref{"aws", "prod/db?version_stage=AWSPREVIOUS#password"}, true},
		{"infisical:/team/API_KEY", Ref{"infisical", "/team/API_KEY"}, true},
		{"op:op://vault/item/field", Ref{"op", "op://vault/item/field"}, true},
		{"", Ref{}, false},
		{"justatoken", Ref{}, false},
		{":x", Ref{}, false},
		{"env:", Ref{}, false},
		{"bad name:x", Ref{}, false},
		{"env: X", Ref{}, false},
		{"env:X ", Ref{}, false},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v", tt.in, got, err)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("String() = %q", got.String())
		}
	}
}
