package proxy

import "time"

// Action is what the proxy did with a request: the audit log's vocabulary
// (docs/audit.md).
type Action string

// The actions a Record can carry.
const (
	ActionInject      Action = "inject"       // a secret was injected
	ActionPass        Action = "pass"         // inspected, nothing injected
	ActionTunnel      Action = "tunnel"       // a plain CONNECT tunnel, recorded once at its end
	ActionDeny        Action = "deny"         // refused by the egress policy or a credential rule
	ActionAuthFailed  Action = "auth_failed"  // the session password was missing or wrong
	ActionLeakBlocked Action = "leak_blocked" // a real secret was headed to a host not bound to it
	ActionError       Action = "error"        // the proxy could not complete the request
)

// Record describes one proxied request or refused connection. It never holds a
// secret value, a placeholder, a query string or a body: Path is the URL path
// alone, and Warning/Error are written by the proxy with that rule in mind.
type Record struct {
	Time       time.Time     // when the request arrived
	Action     Action        // one of the Action constants
	Method     string        // "CONNECT" for tunnels and refused CONNECTs
	Scheme     string        // "https" or "http"
	Host       string        // the CONNECT target (or absolute-form URL) host, lower case
	Port       int           //
	Path       string        // URL path without query
	Credential string        // the credential that applied, "" if none
	Status     int           // status sent to the client (0 if none was sent)
	ReqBytes   int64         // request body bytes (tunnel: client to upstream)
	RespBytes  int64         // response body bytes (tunnel: upstream to client)
	Duration   time.Duration //
	Retried    bool          // replayed after re-resolving a rotated credential
	Redacted   bool          // the reflection guard replaced something in the response
	Warning    string        // short text, never a secret or placeholder
	Error      string        // short text, never a secret or placeholder
}
