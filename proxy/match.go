package proxy

import (
	"net"
	"strconv"
	"strings"

	"github.com/agentvault/agentvault/hostpattern"
)

// patterns is a list of credential or egress host patterns; see package
// hostpattern for what one names.
type patterns []hostpattern.Pattern

// parsePatterns reads credential host patterns (egress=false) or egress rules
// (egress=true, which may also be IP addresses). A pattern that does not parse
// is an error, never skipped: a dropped deny rule would let through what the
// user meant to stop.
func parsePatterns(ss []string, egress bool) (patterns, error) {
	parse := hostpattern.Parse
	if egress {
		parse = hostpattern.ParseEgress
	}
	ps := make(patterns, 0, len(ss))
	for _, s := range ss {
		p, err := parse(s)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (ps patterns) matchTLS(host string, port int) bool {
	for _, p := range ps {
		if p.MatchTLS(host, port) {
			return true
		}
	}
	return false
}

func (ps patterns) matchAny(host string, port int) bool {
	for _, p := range ps {
		if p.MatchAny(host, port) {
			return true
		}
	}
	return false
}

// normalizeHost is hostpattern.NormalizeHost: every host the proxy records or
// compares is normalized the way the patterns match it.
func normalizeHost(h string) string { return hostpattern.NormalizeHost(h) }

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
