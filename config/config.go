// Package config is agentvault's configuration: which file applies (and
// whether a project config is trusted), strict parsing and validation of
// agentvault.yaml, presets and the zero-config equivalent, and the starter
// config of `init`. It decides what a session may do; package session does it.
package config

import (
	"time"

	"github.com/agentvault/agentvault/vocab"
	"gopkg.in/yaml.v3"
)

// EgressDefault is what happens to hosts no credential is bound to
// (egress.default). Inject types and guard modes are package vocab's.
type EgressDefault string

const (
	EgressAllow EgressDefault = "allow"
	EgressDeny  EgressDefault = "deny"
)

// InspectMode says which HTTPS hosts the proxy terminates TLS for
// (egress.inspect).
type InspectMode string

const (
	InspectCredentialed InspectMode = "credentialed" // hosts a credential is bound to
	InspectAll          InspectMode = "all"          // every allowed host
)

// DefaultTTL applies when neither the credential nor the backend gives one.
const DefaultTTL = time.Hour

// Config is a parsed and validated agentvault.yaml, or the zero-config
// equivalent. Defaults are already applied.
type Config struct {
	File        string // the file it came from; "" in zero-config mode
	ZeroConfig  bool
	Backends    map[string]BackendConfig // declared under backends:, by name
	Credentials []Credential
	Egress      Egress
	Guard       Guard
	Audit       AuditConfig
	Isolate     Isolate
	Logins      []string // agent CLIs whose subscription login is brokered (logins.go)
}

// BackendConfig is one entry under backends:. Its type-specific options are
// kept as YAML so the backends package can decode them into its own types.
type BackendConfig struct {
	Name string
	Type string
	Line int // 0 for a backend used by reference without a backends: entry
	file string
	node *yaml.Node // the mapping without "type"; nil when undeclared or empty
}

// Credential is one entry under credentials:, with its preset applied.
type Credential struct {
	Name        string
	Line        int
	Secret      Ref
	Preset      string
	Hosts       []string // normalized host patterns (lower case, optional :port)
	Inject      []InjectRule
	Env         []string // child variables that receive the placeholder
	TTL         time.Duration
	Methods     []string // upper case; empty means any
	Paths       []string // globs; empty means any
	Placeholder string   // fixed placeholder; "" means a random one per session
}

// InjectRule is one `inject:` rule. Hosts empty means all of the credential's hosts.
type InjectRule struct {
	Type     vocab.InjectType
	Username string // basic
	Name     string // header or query parameter name
	Format   string // header value, with vocab.SecretToken where the secret goes
	Hosts    []string
}

// Ref is a secret reference "<backend>:<reference>".
type Ref struct {
	Backend string // backend instance name, e.g. "vault" or "op"
	Ref     string // everything after the first colon, passed to the backend as is
}

// String gives the reference back in config syntax.
func (r Ref) String() string { return r.Backend + ":" + r.Ref }

// Egress is the egress policy section.
type Egress struct {
	Default EgressDefault
	Allow   []string
	Deny    []string
	NoProxy []string
	Inspect InspectMode
}

// Guard is the guard section.
type Guard struct {
	Leak       vocab.LeakMode
	Reflection vocab.ReflectionMode
}

// AuditConfig is the audit section.
type AuditConfig struct {
	Log  string // JSON Lines audit log path; "" for none
	OTLP *OTLP  // audit.otlp; nil for none
}

func defaultConfig() *Config {
	return &Config{
		Backends: map[string]BackendConfig{},
		Egress:   Egress{Default: EgressAllow, Inspect: InspectCredentialed},
		Guard:    Guard{Leak: vocab.LeakBlock, Reflection: vocab.ReflectionRedact},
	}
}

// LookupBackend returns the backend instance a reference names: the declared
// entry, or an implicit one when the name is also a backend type ("env",
// "vault", "aws", ...). Implicit entries have Line 0 and decode nothing.
func (c *Config) LookupBackend(name string) (BackendConfig, bool) {
	if b, ok := c.Backends[name]; ok {
		return b, true
	}
	if t, ok := implicitBackendType(name); ok {
		return BackendConfig{Name: name, Type: t, file: c.File}, true
	}
	return BackendConfig{}, false
}

// Credential returns the credential with that name.
func (c *Config) Credential(name string) (Credential, bool) {
	for _, cr := range c.Credentials {
		if cr.Name == name {
			return cr, true
		}
	}
	return Credential{}, false
}

// HasInject reports whether any rule of c has type t.
func (c Credential) HasInject(t vocab.InjectType) bool {
	for _, r := range c.Inject {
		if r.Type == t {
			return true
		}
	}
	return false
}

// EffectiveTTL is how long a resolved value may be used before resolving it
// again: the configured ttl, else the backend's lease or TTL, else DefaultTTL.
func (c Credential) EffectiveTTL(backendTTL time.Duration) time.Duration {
	switch {
	case c.TTL > 0:
		return c.TTL
	case backendTTL > 0:
		return backendTTL
	}
	return DefaultTTL
}
