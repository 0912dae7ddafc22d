package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/agentvault/agentvault/redact"
	"github.com/agentvault/agentvault/vocab"
)

// Credential is one secret the proxy may put on requests, and the rules that
// say where. The proxy only ever calls Secret for a request whose CONNECT
// target matches Hosts and that arrived over TLS.
type Credential struct {
	Name        string
	Placeholder string      // what the child holds instead of the secret
	Hosts       []string    // "api.example.com", "*.example.com", optional ":port" (default 443)
	Inject      []Injection // rules applied on top of placeholder substitution
	Methods     []string    // empty = every method
	Paths       []string    // globs; empty = every path
	// Secret returns the current real value. It is called for every request
	// the credential is matched or guarded against, so it must be cheap; a
	// credential re-resolved by its owner takes effect at once.
	Secret func() string
}

// Injection is one inject: rule of a credential.
type Injection struct {
	Type     vocab.InjectType
	Username string   // basic; default vocab.DefaultBasicUsername
	Name     string   // header or query parameter name
	Format   string   // header value template; vocab.SecretToken is replaced
	Hosts    []string // subset of the credential's hosts; empty = all of them
}

// Egress is the policy for hosts that no credential is bound to.
type Egress struct {
	DefaultDeny bool     // --strict
	Allow       []string // host patterns allowed under DefaultDeny
	Deny        []string // host patterns always denied (deny wins)
	InspectAll  bool     // MITM every allowed HTTPS host, not only credentialed ones
}

type rule struct {
	hosts patterns // nil = all of the credential's hosts
	inj   injector
}

type credential struct {
	*Credential
	hosts   patterns
	rules   []rule
	methods map[string]bool
	sigv4   patterns // hosts where requests are re-signed; nil = none
	hasAWS  bool
	red     *redact.Redactor // told of every value the credential takes
	last    atomic.Pointer[string]

	needleMu sync.Mutex
	needles  map[needleKey]credNeedles // see needlesOf
}

// current returns the secret's value, first telling the redactor of a value
// it has not seen (a rotation), so output masks it from the first use on.
func (c *credential) current() string {
	v := c.Secret()
	if last := c.last.Load(); c.red != nil && v != "" && (last == nil || *last != v) {
		for _, part := range c.valuesOf(v) {
			c.red.AddSecret(c.Name, part)
		}
		c.red.AddSecret(c.Name, v)
		seen := v // its own variable: &v would move v to the heap on every call
		c.last.Store(&seen)
	}
	return v
}

func compileCredential(c *Credential) (*credential, error) {
	if c.Secret == nil {
		return nil, fmt.Errorf("credential %q has no secret source", c.Name)
	}
	hosts, err := parsePatterns(c.Hosts, false)
	if err != nil {
		return nil, fmt.Errorf("credential %q: %w", c.Name, err)
	}
	cc := &credential{Credential: c, hosts: hosts}
	if len(cc.hosts) == 0 {
		return nil, fmt.Errorf("credential %q has no hosts", c.Name)
	}
	for _, in := range c.Inject {
		if in.Type == vocab.InjectAWSSigV4 {
			cc.hasAWS = true
			hs := cc.hosts
			if len(in.Hosts) > 0 {
				if hs, err = parsePatterns(in.Hosts, false); err != nil {
					return nil, fmt.Errorf("credential %q: %w", c.Name, err)
				}
			}
			cc.sigv4 = append(cc.sigv4, hs...)
			continue
		}
		inj, err := newInjector(in)
		if err != nil {
			return nil, fmt.Errorf("credential %q: %w", c.Name, err)
		}
		if inj == nil {
			continue
		}
		var hs patterns
		if len(in.Hosts) > 0 {
			if hs, err = parsePatterns(in.Hosts, false); err != nil {
				return nil, fmt.Errorf("credential %q: %w", c.Name, err)
			}
		}
		cc.rules = append(cc.rules, rule{hosts: hs, inj: inj})
	}
	if len(c.Methods) > 0 {
		cc.methods = map[string]bool{}
		for _, m := range c.Methods {
			cc.methods[strings.ToUpper(m)] = true
		}
	}
	return cc, nil
}

// apply puts this one credential on the request (see injectCredentials).
func (c *credential) apply(req *http.Request, host string, port int) (bool, error) {
	names, _, err := injectCredentials(req, []*credential{c}, host, port)
	return len(names) > 0, err
}

// resign replaces the child's dummy AWS signature with one made with the
// real keys. A request with no AWS signature goes on untouched.
func (c *credential) resign(req *http.Request, secret, host string, port int) (bool, error) {
	if !c.sigv4.matchTLS(host, port) {
		return false, nil
	}
	err := resignAWS(req, secret, host, port)
	switch {
	case errors.Is(err, errAWSUnsigned):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("credential %q: %w", c.Name, err)
	}
	return true, nil
}

// values are the strings of a credential that must never travel to another
// host or come back to the agent: the secret, or for AWS keys each key.
func (c *credential) values() []string { return c.valuesOf(c.current()) }

func (c *credential) valuesOf(v string) []string {
	if v == "" {
		return nil
	}
	if c.hasAWS {
		if k, err := parseAWSCredentials(v); err == nil {
			out := []string{k.AccessKeyID, k.SecretAccessKey}
			if k.SessionToken != "" {
				out = append(out, k.SessionToken)
			}
			return out
		}
	}
	return []string{v}
}

// policy holds the compiled rules of one proxy.
type policy struct {
	creds  []*credential
	allow  patterns
	deny   patterns
	strict bool
	all    bool
}

func compilePolicy(creds []*Credential, e Egress, red *redact.Redactor) (*policy, error) {
	allow, err := parsePatterns(e.Allow, true)
	if err != nil {
		return nil, fmt.Errorf("egress allow: %w", err)
	}
	deny, err := parsePatterns(e.Deny, true)
	if err != nil {
		return nil, fmt.Errorf("egress deny: %w", err)
	}
	p := &policy{allow: allow, deny: deny, strict: e.DefaultDeny, all: e.InspectAll}
	seen := map[string]bool{}
	for _, c := range creds {
		if seen[c.Name] {
			return nil, fmt.Errorf("duplicate credential %q", c.Name)
		}
		seen[c.Name] = true
		cc, err := compileCredential(c)
		if err != nil {
			return nil, err
		}
		cc.red = red
		p.creds = append(p.creds, cc)
	}
	return p, nil
}

func (p *policy) byName(name string) *credential {
	for _, c := range p.creds {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// credentialsFor returns the credentials bound to an HTTPS target.
func (p *policy) credentialsFor(host string, port int) []*credential {
	var out []*credential
	for _, c := range p.creds {
		if c.hosts.matchTLS(host, port) {
			out = append(out, c)
		}
	}
	return out
}

// credentialedName reports whether any credential names host on any port; a
// plain-HTTP request to such a host is refused outright.
func (p *policy) credentialedName(host string) bool {
	for _, c := range p.creds {
		for _, h := range c.hosts {
			if h.MatchName(host) {
				return true
			}
		}
	}
	return false
}

// decision is what the egress policy says of a target with no credential.
type decision struct {
	allowed bool
	rule    string // the rule that decided, for the 403 body and the audit warning
}

func (p *policy) egress(host string, port int) decision {
	for i, d := range p.deny {
		if d.MatchAny(host, port) {
			return decision{false, fmt.Sprintf("egress deny rule %d", i+1)}
		}
	}
	if len(p.credentialsFor(host, port)) > 0 {
		return decision{true, "credential host"}
	}
	if p.allow.matchAny(host, port) {
		return decision{true, "egress allow rule"}
	}
	if p.strict {
		return decision{false, "egress default deny"}
	}
	return decision{true, "egress default allow"}
}
