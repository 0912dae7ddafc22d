package ca

import (
	"fmt"
	"net"
	"sort"
	"strings"
)

// permittedDomains turns credential host patterns into X.509 permitted DNS
// name constraints.
//
// "*.example.com" becomes ".example.com". Go's verifier, OpenSSL (curl,
// Python, git on OpenSSL) and GnuTLS (git on Debian) all read a leading dot
// as "one or more labels below example.com, but not example.com itself",
// which is exactly the pattern's meaning; without the dot all three would
// also accept example.com. "api.example.com" stays as is; X.509 cannot say
// "this exact name", so names below it are permitted too (RFC 5280 4.2.1.10).
func permittedDomains(hosts []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, h := range hosts {
		d, err := constraintFor(h)
		if err != nil {
			return nil, err
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out, nil
}

func constraintFor(pattern string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(pattern))
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		if !allDigits(h[i+1:]) {
			return "", fmt.Errorf("host pattern %q: bad port", pattern)
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil || strings.Contains(h, ":") {
		return "", fmt.Errorf("host pattern %q is an IP address; the session CA never signs for IPs", pattern)
	}
	wildcard := strings.HasPrefix(h, "*.")
	if wildcard {
		h = h[2:]
	}
	if err := checkDNSName(h); err != nil {
		return "", fmt.Errorf("host pattern %q: %v", pattern, err)
	}
	if wildcard {
		return "." + h, nil
	}
	return h, nil
}

func checkDNSName(h string) error {
	if h == "" {
		return fmt.Errorf("empty host name")
	}
	if len(h) > 253 {
		return fmt.Errorf("host name longer than 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("empty or over-long label")
		}
		for _, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			case c == '*':
				return fmt.Errorf(`"*" is only allowed as a whole leading label ("*.example.com")`)
			default:
				return fmt.Errorf("invalid character %q (use the punycode form for international names)", c)
			}
		}
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
