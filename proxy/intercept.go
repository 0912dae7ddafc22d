package proxy

import "github.com/agentvault/agentvault/hostpattern"

// Interception is the set of TLS connections the proxy decrypts: every host a
// credential is bound to and, under egress.inspect: all, every other allowed
// host that is not an IP address (IP targets are always tunnelled). The
// session CA is name-constrained to it and the proxy decrypts nothing outside
// it; both sides take the rule from here (Intercepted, policy.intercepts).
type Interception struct {
	// Hosts are the patterns the CA must be able to issue leaves for.
	Hosts []string
	// Any is set when every allowed name is decrypted (inspect: all under
	// default allow): no finite list exists, so the CA cannot be constrained.
	Any bool
}

// Intercepted is the Interception of a proxy with these credentials and
// egress policy, known before it starts.
func Intercepted(creds []*Credential, e Egress) Interception {
	var in Interception
	for _, c := range creds {
		in.Hosts = append(in.Hosts, c.Hosts...)
	}
	if !e.InspectAll {
		return in
	}
	if !e.DefaultDeny {
		in.Any = true
		return in
	}
	for _, h := range e.Allow {
		if p, err := hostpattern.ParseEgress(h); err == nil && !p.IsIP() {
			in.Hosts = append(in.Hosts, h)
		}
	}
	return in
}

// intercepts is Intercepted for one admitted target: whether the proxy
// decrypts a connection to host:port that the egress rules let through.
// Under default deny an admitted host is a credential host or matches an
// allow rule, which is what Intercepted lists.
func (p *policy) intercepts(host string, port int) bool {
	return len(p.credentialsFor(host, port)) > 0 || (p.all && !isIP(host))
}
