package config

import "github.com/agentvault/agentvault/hostpattern"

// NormalizeHostPattern validates a credential host pattern (see package
// hostpattern: a DNS name or "*.domain", optionally with ":port") and returns
// its normal form (lower case).
func NormalizeHostPattern(s string) (string, error) {
	p, err := hostpattern.Parse(s)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

// ValidEgressPattern checks an egress allow/deny entry: a host pattern or an
// IP address, either with an optional port ("[::1]:8080" for IPv6 with a port).
func ValidEgressPattern(s string) error {
	_, err := normalizeEgressPattern(s)
	return err
}

func normalizeEgressPattern(s string) (string, error) {
	p, err := hostpattern.ParseEgress(s)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

// patternPort splits a normalized pattern into name and port (443 by default).
func patternPort(p string) (string, int) {
	hp, err := hostpattern.ParseEgress(p)
	if err != nil {
		return p, hostpattern.DefaultTLSPort
	}
	if hp.Port() == 0 {
		return hp.Name(), hostpattern.DefaultTLSPort
	}
	return hp.Name(), hp.Port()
}

// patternCovers reports whether every host that inner matches is also matched
// by outer (see hostpattern.Pattern.Covers). Patterns that do not parse cover
// nothing and are covered by nothing.
func patternCovers(outer, inner string) bool {
	o, err1 := hostpattern.Parse(outer)
	i, err2 := hostpattern.Parse(inner)
	return err1 == nil && err2 == nil && o.Covers(i)
}
