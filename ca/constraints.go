package ca

import (
	"errors"
	"fmt"
	"sort"

	"github.com/agentvault/agentvault/hostpattern"
)

// permittedDomains turns credential host patterns into X.509 permitted DNS
// name constraints (see hostpattern.Pattern.Constraint): "*.example.com"
// becomes ".example.com", an exact name stays as is, and the port plays no
// part. The result is sorted and free of repeats.
func permittedDomains(hosts []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, h := range hosts {
		p, err := hostpattern.Parse(h)
		if errors.Is(err, hostpattern.ErrIP) {
			return nil, fmt.Errorf("host pattern %q is an IP address; the session CA never signs for IPs", h)
		}
		if err != nil {
			return nil, err
		}
		d, err := p.Constraint()
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
