package session

import (
	"errors"
	"net"

	"github.com/agentvault/agentvault/launcher/isolate"
)

// startSandbox sets up the isolation sandbox before any secret is resolved,
// so a refusal (FailConfig) costs nothing and leases nothing.
func (r *runner) startSandbox() error {
	// The real token stores of brokered logins too (logins.go).
	extra := append(append([]string(nil), r.cfg.Isolate.Hide...), r.loginStores()...)
	hide, err := isolate.HidePaths(r.opts.Home, r.opts.LookupEnv, extra, r.cfg.Isolate.Show)
	if err != nil {
		return runErr(FailConfig, "isolate: %w", err)
	}
	// Transparent: names resolve to loopback inside, where the proxy also
	// takes TLS on :443 and HTTP on :80, so a client that ignores the proxy
	// variables meets the same rules instead of failing.
	sb, err := isolate.Start(isolate.Spec{Dir: r.opts.Cwd, Hide: hide, Transparent: true})
	if err != nil {
		var refused *isolate.Refused
		if errors.As(err, &refused) {
			return &RunError{Kind: FailConfig, Err: err}
		}
		return &RunError{Kind: FailInternal, Err: err}
	}
	r.sandbox = sb
	return nil
}

// serveInSandbox makes the proxy reachable inside the sandbox at the same
// 127.0.0.1 port, so the child's proxy variables are those of host mode.
func (r *runner) serveInSandbox(addr net.Addr) error {
	ln, err := r.sandbox.Listen(addr.(*net.TCPAddr).Port)
	if err == nil {
		err = r.prx.Serve(ln)
	}
	if err == nil {
		var tlsLn, httpLn net.Listener
		if tlsLn, httpLn, err = r.sandbox.ListenTransparent(); err == nil {
			err = r.prx.ServeTransparent(tlsLn, httpLn)
		}
	}
	if err != nil {
		return runErr(FailInternal, "proxy inside the sandbox: %w", err)
	}
	return nil
}
