package hostpattern

import (
	"errors"
	"net/netip"
	"strings"
)

// DefaultTLSPort is the port a credential pattern without one names.
const DefaultTLSPort = 443

// NormalizeHost lower-cases a request's host and drops one trailing dot, so
// that "API.Example.com." and "api.example.com" are one host for every rule.
// Unlike a pattern, a host is lowered with full Unicode case folding: a deny
// rule must catch every spelling a resolver might map onto its names.
func NormalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if strings.HasSuffix(h, ".") && !strings.HasSuffix(h, "..") {
		h = strings.TrimSuffix(h, ".")
	}
	return h
}

// MatchName reports whether host is named by the pattern on some port: equal
// to an exact name, one or more labels below a wildcard's domain, or the same
// address as an IP rule (however the address is spelled).
func (p Pattern) MatchName(host string) bool {
	host = NormalizeHost(host)
	switch {
	case p.ip.IsValid():
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		return err == nil && a.Unmap() == p.ip.Unmap()
	case p.wildcard:
		return len(host) > len(p.name)+1 && strings.HasSuffix(host, p.name) && host[len(host)-len(p.name)-1] == '.'
	default:
		return p.name != "" && host == p.name
	}
}

// MatchTLS matches an HTTPS target as a credential binding: the port must be
// the pattern's, or 443 when the pattern names none. An IP rule matches no
// target here: IP addresses are never credential hosts.
func (p Pattern) MatchTLS(host string, port int) bool {
	return !p.ip.IsValid() && port == p.tlsPort() && p.MatchName(host)
}

// MatchAny matches an egress rule: a pattern without a port covers every port.
func (p Pattern) MatchAny(host string, port int) bool {
	return (p.port == 0 || p.port == port) && p.MatchName(host)
}

func (p Pattern) tlsPort() int {
	if p.port == 0 {
		return DefaultTLSPort
	}
	return p.port
}

// Covers reports whether every HTTPS target inner matches is also matched by
// p: the same port (443 when none is named) and the same name, or p "*.d" and
// inner at least one label below d ("x.d" or "*.x.d"). IP rules, which match
// no HTTPS target as credentials, neither cover nor are covered.
func (p Pattern) Covers(inner Pattern) bool {
	if p.tlsPort() != inner.tlsPort() || p.ip.IsValid() || inner.ip.IsValid() {
		return false
	}
	if p.name == inner.name && p.wildcard == inner.wildcard {
		return true
	}
	return p.wildcard && strings.HasSuffix(inner.name, "."+p.name)
}

// Constraint is the X.509 permitted DNS name for the pattern. "*.d" becomes
// ".d": Go's verifier, OpenSSL and GnuTLS all read a leading dot as "one or
// more labels below d, but not d itself", exactly the pattern's meaning.
// An exact name stays as is; X.509 cannot say "this name only", so names
// below it are permitted too (RFC 5280 4.2.1.10). The port plays no part.
func (p Pattern) Constraint() (string, error) {
	switch {
	case p.ip.IsValid():
		return "", ErrIP
	case p.name == "":
		return "", errors.New("empty host pattern")
	case p.wildcard:
		return "." + p.name, nil
	default:
		return p.name, nil
	}
}
