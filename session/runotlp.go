package session

import (
	"context"
	"time"

	"github.com/agentvault/agentvault/audit/otlp"
)

// otlpFlush bounds how long a dead or slow collector can delay the exit.
const otlpFlush = 2 * time.Second

// startOTLP starts the audit.otlp exporter, if one is configured. Header
// values are read from agentvault's environment now; the variables they name
// are agentvault's and are kept from the command (r.otlpEnv). The exporter
// trusts the same roots as the proxy upstream (system roots plus
// --upstream-ca) and sends directly, never through the session proxy.
func (r *runner) startOTLP(t *sessionTrust) error {
	o := r.cfg.Audit.OTLP
	if o == nil {
		return nil
	}
	headers, vars, err := o.HeaderValues(r.opts.LookupEnv)
	if err != nil {
		return runErr(FailConfig, "%w", err)
	}
	if r.sandbox == nil && o.HeadersInClear() {
		return runErr(FailConfig, "audit.otlp: headers are sent to an http:// endpoint only under --isolate: in host mode the agent could listen on the collector's port first and read them; use https://")
	}
	e, err := otlp.New(otlp.Config{Endpoint: o.Endpoint, Headers: headers, Session: r.id, RootCAs: t.pool})
	if err != nil {
		return runErr(FailConfig, "audit.otlp: %w", err)
	}
	r.otlp, r.otlpEnv = e, vars
	return nil
}

// stopOTLP flushes the exporter within otlpFlush; what the collector did not
// get becomes one summary warning (the JSONL log is written independently).
func (r *runner) stopOTLP() {
	if r.otlp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), otlpFlush)
	defer cancel()
	if w := r.otlp.Shutdown(ctx).Warning(); w != "" {
		r.warn(w)
	}
}
