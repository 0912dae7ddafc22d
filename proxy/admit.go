package proxy

import (
	"fmt"
	"net/http"
)

// admission is what the rules make of a connection to host:port that
// authenticated: refused (status and body for the client), decrypted, or
// tunnelled.
type admission struct {
	status int    // non-zero: refused; rec says why
	body   string // the refusal's body
	mitm   bool   // admitted and decrypted; otherwise a plain tunnel
}

// admit applies the egress rules and the leak guard on the name to a CONNECT
// target, or to the server name of a transparent TLS connection, so both
// paths decide alike. It fills rec's action, status and warning.
func (p *Proxy) admit(host string, port int, rec *Record) admission {
	if !p.Guard.leakOff() {
		// The target name is itself a channel: "<secret>.evil.example" would
		// carry the secret out through DNS and SNI.
		if c := p.leakNameMatcher(host, port).findString(host); c != nil {
			why := fmt.Sprintf("CONNECT target carries the secret of %q", c.Name)
			if p.Guard.leakBlocks() {
				rec.Action, rec.Status, rec.Warning = ActionLeakBlocked, http.StatusForbidden, why
				return admission{status: http.StatusForbidden, body: "agentvault: " + why + "\n"}
			}
			rec.Warning = why
		}
	}
	d := p.policy.egress(host, port)
	if !d.allowed {
		rec.Action, rec.Status, rec.Warning = ActionDeny, http.StatusForbidden, "denied by "+d.rule
		return admission{status: http.StatusForbidden, body: fmt.Sprintf("agentvault: %s is denied by %s\n", host, d.rule)}
	}
	return admission{mitm: p.policy.intercepts(host, port)}
}
