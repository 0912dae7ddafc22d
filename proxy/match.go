package proxy

import (
	"net"
	"strconv"
	"strings"
)

// hostPattern is a parsed credential or egress host pattern: an exact DNS name
// or "*.domain" (one or more labels below domain, never domain itself), with
// an optional port. A pattern without a port matches only 443 when used for
// HTTPS credentials and any port when used for egress rules.
type hostPattern struct {
	suffix   string // ".domain" for wildcards
	exact    string // the name for exact patterns
	port     int    // 0 = default
	wildcard bool
}

func parsePattern(s string) hostPattern {
	s = normalizeHost(s)
	var hp hostPattern
	if h, p, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
			s, hp.port = normalizeHost(h), n
		}
	}
	if strings.HasPrefix(s, "*.") {
		hp.wildcard, hp.suffix = true, s[1:]
	} else {
		hp.exact = s
	}
	return hp
}

// matchName reports whether host (already normalized) is covered by the
// pattern, ignoring ports.
func (hp hostPattern) matchName(host string) bool {
	if hp.wildcard {
		return len(host) > len(hp.suffix) && strings.HasSuffix(host, hp.suffix)
	}
	return host == hp.exact
}

// matchTLS matches an HTTPS target: the port must be the pattern's, or 443
// when the pattern names none.
func (hp hostPattern) matchTLS(host string, port int) bool {
	want := hp.port
	if want == 0 {
		want = 443
	}
	return port == want && hp.matchName(host)
}

// matchAny matches an egress rule: a pattern without a port covers every port.
func (hp hostPattern) matchAny(host string, port int) bool {
	return (hp.port == 0 || hp.port == port) && hp.matchName(host)
}

type patterns []hostPattern

func parsePatterns(ss []string) patterns {
	ps := make(patterns, 0, len(ss))
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			ps = append(ps, parsePattern(s))
		}
	}
	return ps
}

func (ps patterns) matchTLS(host string, port int) bool {
	for _, p := range ps {
		if p.matchTLS(host, port) {
			return true
		}
	}
	return false
}

func (ps patterns) matchAny(host string, port int) bool {
	for _, p := range ps {
		if p.matchAny(host, port) {
			return true
		}
	}
	return false
}

// normalizeHost lower-cases a host and drops a trailing dot, so that
// "API.Example.com." and "api.example.com" are one host for every rule.
func normalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if strings.HasSuffix(h, ".") && !strings.HasSuffix(h, "..") {
		h = strings.TrimSuffix(h, ".")
	}
	return h
}

// splitTarget parses "host:port" (a CONNECT target or URL host) with a
// default port for the scheme.
func splitTarget(hostport string, defaultPort int) (string, int, bool) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		// No port: the whole thing is the host (IPv6 literals arrive bracketed).
		host = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
		if host == "" || strings.ContainsAny(host, "/ ") {
			return "", 0, false
		}
		return normalizeHost(host), defaultPort, true
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 || host == "" {
		return "", 0, false
	}
	return normalizeHost(host), port, true
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
