package session

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ValidHostPattern checks a credential host pattern: a DNS name or "*.domain"
// (the wildcard only as the whole first label), optionally followed by
// ":port". Case does not matter. IP addresses are not host patterns.
func ValidHostPattern(s string) error {
	_, err := NormalizeHostPattern(s)
	return err
}

// NormalizeHostPattern validates a host pattern and returns it in lower case.
func NormalizeHostPattern(s string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(s))
	if p == "" {
		return "", errors.New("empty host pattern")
	}
	if strings.Contains(p, "://") || strings.ContainsAny(p, "/?#@ ") {
		return "", fmt.Errorf("host pattern %q: a host name, not a URL", s)
	}
	host, _, err := splitPatternPort(p)
	if err != nil {
		return "", fmt.Errorf("host pattern %q: %v", s, err)
	}
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return "", fmt.Errorf("host pattern %q: IP addresses are not credential hosts", s)
	}
	name := host
	if strings.HasPrefix(host, "*.") {
		name = host[2:]
	}
	if err := validDNSName(name); err != nil {
		return "", fmt.Errorf("host pattern %q: %v", s, err)
	}
	return p, nil
}

// ValidEgressPattern checks an egress allow/deny entry: a host pattern or an
// IP address, either with an optional port ("[::1]:8080" for IPv6 with a port).
func ValidEgressPattern(s string) error {
	_, err := normalizeEgressPattern(s)
	return err
}

func normalizeEgressPattern(s string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(s))
	if ip := net.ParseIP(p); ip != nil {
		return p, nil
	}
	if strings.HasPrefix(p, "[") {
		host, port, err := net.SplitHostPort(p)
		if err != nil || net.ParseIP(host) == nil {
			return "", fmt.Errorf("egress pattern %q: not an IP address with a port", s)
		}
		if _, err := parsePort(port); err != nil {
			return "", fmt.Errorf("egress pattern %q: %v", s, err)
		}
		return p, nil
	}
	if host, port, err := net.SplitHostPort(p); err == nil && net.ParseIP(host) != nil {
		if _, err := parsePort(port); err != nil {
			return "", fmt.Errorf("egress pattern %q: %v", s, err)
		}
		return p, nil
	}
	n, err := NormalizeHostPattern(s)
	if err != nil {
		return "", errors.New(strings.Replace(err.Error(), "IP addresses are not credential hosts", "not a valid IP address", 1))
	}
	return n, nil
}

// splitPatternPort splits an optional ":port" suffix.
func splitPatternPort(p string) (host string, port int, err error) {
	i := strings.LastIndexByte(p, ':')
	if i < 0 {
		return p, 0, nil
	}
	if strings.Count(p, ":") > 1 && !strings.HasPrefix(p, "[") {
		return p, 0, nil // bare IPv6; the caller rejects it as an IP
	}
	port, err = parsePort(p[i+1:])
	if err != nil {
		return "", 0, err
	}
	return p[:i], port, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || s[0] == '0' || s[0] == '+' {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

func validDNSName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > 253 {
		return errors.New("name longer than 253 characters")
	}
	if strings.HasSuffix(name, ".") {
		return errors.New("trailing dot")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" {
			return errors.New("empty label")
		}
		if len(l) > 63 {
			return errors.New("label longer than 63 characters")
		}
		if strings.Contains(l, "*") {
			return errors.New("a wildcard is only allowed as the whole first label (*.example.com)")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("invalid character %q", c)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return errors.New("numeric top-level label (IP addresses are not host patterns)")
	}
	return nil
}

// patternPort splits a normalized pattern into name and port (443 by default).
func patternPort(p string) (string, int) {
	host, port, err := splitPatternPort(p)
	if err != nil || port == 0 {
		return host, 443
	}
	return host, port
}

// patternCovers reports whether every host that inner matches is also matched
// by outer: equal names, or outer "*.d" and inner at least one label below d.
func patternCovers(outer, inner string) bool {
	on, op := patternPort(outer)
	in, ip := patternPort(inner)
	if op != ip {
		return false
	}
	if on == in {
		return true
	}
	if strings.HasPrefix(on, "*.") {
		// "*.d" covers "x.d" and "*.x.d": both only match names below d.
		return strings.HasSuffix(strings.TrimPrefix(in, "*."), on[1:])
	}
	return false
}
