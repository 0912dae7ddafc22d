// Package hostpattern is the one definition of a host pattern, shared by the
// configuration (validation), the proxy (matching) and the session CA (X.509
// name constraints), so that the three can never disagree on which hosts a
// pattern names.
//
// A pattern is an exact DNS name ("api.example.com") or "*.domain", which
// names every host one or more labels below domain and never domain itself,
// optionally followed by ":port". Case does not matter. IP addresses are not
// credential hosts (Parse refuses them) but may be egress rules (ParseEgress).
//
// Invariants:
//   - a parsed pattern's String parses again to the same pattern;
//   - a pattern from Parse is never an IP address and always has a
//     Constraint that permits every host it matches;
//   - matching normalizes the host itself, so no caller can forget to.
package hostpattern

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Pattern is a parsed host pattern. The zero value matches nothing.
type Pattern struct {
	name     string     // lower case; for a wildcard the domain below "*."
	wildcard bool       // "*.name"
	ip       netip.Addr // valid only for an IP egress rule
	port     int        // 0 = not given
}

// ErrIP is wrapped by Parse's error for an IP address, which only egress rules
// may name.
var ErrIP = errors.New("IP addresses are not credential hosts")

// Parse reads a credential host pattern: a DNS name or "*.domain", with an
// optional ":port" (1-65535, no leading zero).
func Parse(s string) (Pattern, error) {
	p := strings.TrimSpace(s)
	if p == "" {
		return Pattern{}, errors.New("empty host pattern")
	}
	if strings.Contains(p, "://") || strings.ContainsAny(p, "/?#@ ") {
		return Pattern{}, fmt.Errorf("host pattern %q: a host name, not a URL", s)
	}
	// Only ASCII is lower-cased: strings.ToLower would turn the Kelvin sign
	// into "k" and accept a name the user did not write.
	p = asciiLower(p)
	host, port, err := splitPort(p)
	if err != nil {
		return Pattern{}, fmt.Errorf("host pattern %q: %v", s, err)
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return Pattern{}, fmt.Errorf("host pattern %q: %w", s, ErrIP)
	}
	hp := Pattern{name: host, port: port}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		hp.name, hp.wildcard = rest, true
	}
	if err := checkName(hp.name); err != nil {
		return Pattern{}, fmt.Errorf("host pattern %q: %v", s, err)
	}
	return hp, nil
}

// ParseEgress reads an egress allow or deny rule: a host pattern or an IP
// address, either with an optional port ("[::1]:8080" for IPv6 with a port;
// brackets only around IPv6, and only with a port).
func ParseEgress(s string) (Pattern, error) {
	p := asciiLower(strings.TrimSpace(s))
	if ip, err := netip.ParseAddr(p); err == nil {
		if ip.Zone() != "" {
			return Pattern{}, fmt.Errorf("egress pattern %q: an IP address with a zone", s)
		}
		return Pattern{ip: ip}, nil
	}
	if h, portStr, ok := splitIPPort(p); ok {
		ip, err := netip.ParseAddr(h)
		bracketed := strings.HasPrefix(p, "[")
		if err != nil || ip.Zone() != "" || bracketed != ip.Is6() {
			return Pattern{}, fmt.Errorf("egress pattern %q: not an IP address with a port", s)
		}
		port, err := parsePort(portStr)
		if err != nil {
			return Pattern{}, fmt.Errorf("egress pattern %q: %v", s, err)
		}
		return Pattern{ip: ip, port: port}, nil
	}
	hp, err := Parse(s)
	if errors.Is(err, ErrIP) {
		return Pattern{}, fmt.Errorf("egress pattern %q: not a valid IP address", s)
	}
	return hp, err
}

// splitIPPort splits "[v6]:port" or "a.b.c.d:port" when the part before the
// port looks like an address, so that a mistyped one is reported as such.
func splitIPPort(p string) (host, port string, ok bool) {
	if strings.HasPrefix(p, "[") {
		end := strings.Index(p, "]:")
		if end < 0 {
			return "", "", true // "[::1]" alone: brackets need a port
		}
		return p[1:end], p[end+2:], true
	}
	i := strings.LastIndexByte(p, ':')
	if i < 0 || strings.Count(p, ":") != 1 {
		return "", "", false
	}
	if _, err := netip.ParseAddr(p[:i]); err != nil {
		return "", "", false
	}
	return p[:i], p[i+1:], true
}

// String is the pattern's normal form: lower case, the port as given, an IP
// address in its canonical spelling.
func (p Pattern) String() string {
	var h string
	switch {
	case p.ip.IsValid() && p.port != 0 && p.ip.Is6():
		return "[" + p.ip.String() + "]:" + strconv.Itoa(p.port)
	case p.ip.IsValid():
		h = p.ip.String()
	case p.wildcard:
		h = "*." + p.name
	default:
		h = p.name
	}
	if p.port != 0 {
		h += ":" + strconv.Itoa(p.port)
	}
	return h
}

// Port is the port the pattern names, 0 when it names none.
func (p Pattern) Port() int { return p.port }

// Wildcard reports whether the pattern is "*.domain".
func (p Pattern) Wildcard() bool { return p.wildcard }

// IsIP reports whether the pattern is an IP address (egress rules only).
func (p Pattern) IsIP() bool { return p.ip.IsValid() }

// Name is the pattern without its port: "*.domain", a DNS name or an IP.
func (p Pattern) Name() string {
	q := p
	q.port = 0
	return q.String()
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
