// Package vocab is the vocabulary agentvault.yaml and the proxy share: how a
// secret is put on a request (injection types and their defaults), what the
// guards do when a real value shows up where it should not, and which headers
// only the proxy may set. Package config validates these words; package
// proxy acts on them; both take them from here so they cannot drift apart.
package vocab

import (
	"net/http"
	"slices"
)

// InjectType is how an inject: rule puts the secret on a request.
type InjectType string

const (
	// InjectPlaceholder swaps the placeholder for the secret wherever the
	// child put it; substitution runs on every bound host whatever the rules.
	InjectPlaceholder InjectType = "placeholder"
	InjectBearer      InjectType = "bearer"    // Authorization: Bearer <secret>
	InjectBasic       InjectType = "basic"     // Authorization: Basic <username:secret>
	InjectHeader      InjectType = "header"    // a named header, from a format
	InjectQuery       InjectType = "query"     // a named query parameter
	InjectAWSSigV4    InjectType = "aws-sigv4" // the request re-signed with the real key
)

// InjectTypes lists every injection type, in the order documentation and
// error messages give them.
var InjectTypes = []InjectType{InjectPlaceholder, InjectBearer, InjectBasic, InjectHeader, InjectQuery, InjectAWSSigV4}

const (
	// DefaultBasicUsername is the basic rule's username when none is given:
	// what GitHub (and most git hosts) accept with a token.
	DefaultBasicUsername = "x-access-token"
	// SecretToken marks where the secret goes in a header rule's format; a
	// format left empty is SecretToken alone.
	SecretToken = "{{secret}}"
)

// LeakMode is what the leak guard does with a real secret headed to a host
// it is not bound to.
type LeakMode string

const (
	LeakBlock LeakMode = "block" // refuse the request (the default)
	LeakWarn  LeakMode = "warn"  // let it pass and say so
	LeakOff   LeakMode = "off"   // do not look
)

// LeakModes lists every leak mode, the default first.
var LeakModes = []LeakMode{LeakBlock, LeakWarn, LeakOff}

// ReflectionMode is what the reflection guard does with a real secret in a
// response on its way to the child.
type ReflectionMode string

const (
	ReflectionRedact ReflectionMode = "redact" // replace it by the placeholder (the default)
	ReflectionOff    ReflectionMode = "off"    // pass it through
)

// ReflectionModes lists every reflection mode, the default first.
var ReflectionModes = []ReflectionMode{ReflectionRedact, ReflectionOff}

// ProxyUser is the user name in the session proxy's URL; the password is the
// session's own, so the name only has to match on both sides.
const ProxyUser = "agentvault"

// HopHeaders are per-connection headers (RFC 9110 section 7.6.1, plus the
// proxy's own authentication) that a proxy must not forward.
var HopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// ownedHeaders are the hop headers plus those that frame or route the
// request; the proxy sets them itself.
var ownedHeaders = append(slices.Clone(HopHeaders), "Host", "Content-Length")

// OwnedHeader reports whether only the proxy may set the header name (in any
// case): an injection rule setting it would break framing, routing or the
// proxy's own authentication.
func OwnedHeader(name string) bool {
	return slices.Contains(ownedHeaders, http.CanonicalHeaderKey(name))
}

// OwnedHeaders lists them, canonically spelled.
func OwnedHeaders() []string { return slices.Clone(ownedHeaders) }

// exporterHeaders are the headers the audit log's OTLP exporter sets itself.
var exporterHeaders = []string{"Content-Type", "Content-Length", "Content-Encoding", "Host", "Transfer-Encoding", "Connection"}

// ExporterHeader reports whether the OTLP exporter sets the header name (in
// any case) itself, so that a configured header may not: the config check
// and the exporter refuse the same names.
func ExporterHeader(name string) bool {
	return slices.Contains(exporterHeaders, http.CanonicalHeaderKey(name))
}
