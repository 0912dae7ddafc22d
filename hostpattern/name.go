package hostpattern

import (
	"errors"
	"fmt"
	"strings"
)

// splitPort splits an optional ":port" suffix. A bare IPv6 address (several
// colons, no brackets) is returned whole for the caller to refuse as an IP.
func splitPort(p string) (host string, port int, err error) {
	i := strings.LastIndexByte(p, ':')
	if i < 0 || strings.Count(p, ":") > 1 && !strings.HasPrefix(p, "[") {
		return p, 0, nil
	}
	port, err = parsePort(p[i+1:])
	if err != nil {
		return "", 0, err
	}
	return p[:i], port, nil
}

// parsePort accepts 1-65535 written in plain decimal: no sign, no leading
// zero, so that one port has one spelling.
func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || s[0] == '0' {
		return 0, fmt.Errorf("bad port %q", s)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad port %q", s)
		}
		n = n*10 + int(s[i]-'0')
	}
	if n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

// checkName accepts a lower-case DNS name as TLS clients and the X.509
// verifiers of Go, OpenSSL and GnuTLS compare it: LDH labels (plus '_', which
// service names use) of 1-63 bytes, at most 253 bytes, no trailing dot, and a
// last label that is not all digits (that would be an IP address in some
// resolvers' eyes).
func checkName(name string) error {
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
		if err := checkLabel(l); err != nil {
			return err
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errors.New("numeric top-level label (IP addresses are not host patterns)")
	}
	return nil
}

func checkLabel(l string) error {
	switch {
	case l == "":
		return errors.New("empty label")
	case len(l) > 63:
		return errors.New("label longer than 63 characters")
	case strings.Contains(l, "*"):
		return errors.New("a wildcard is only allowed as the whole first label (*.example.com)")
	}
	for _, c := range l {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c >= 0x80:
			return fmt.Errorf("invalid character %q (use the punycode form for international names)", c)
		default:
			return fmt.Errorf("invalid character %q", c)
		}
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with '-'", l)
	}
	return nil
}
