package main

import (
	"errors"
	"net"
	"os"

	"github.com/agentvault/agentvault/launcher/isolate"
)

// startSandbox sets up --isolate's sandbox before any secret is resolved, so
// a refusal (exit 78) costs nothing and leases nothing.
func (r *runner) startSandbox(cwd, home string) error {
	hide, err := isolate.HidePaths(home, os.LookupEnv, r.cfg.Isolate.Hide, r.cfg.Isolate.Show)
	if err != nil {
		return fail(exitConfig, "agentvault: isolate: %v", err)
	}
	sb, err := isolate.Start(isolate.Spec{Dir: cwd, Hide: hide})
	if err != nil {
		var refused *isolate.Refused
		if errors.As(err, &refused) {
			return fail(exitConfig, "agentvault: %v", err)
		}
		return fail(exitSoftware, "agentvault: %v", err)
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
	if err != nil {
		return fail(exitSoftware, "agentvault: proxy inside the sandbox: %v", err)
	}
	return nil
}

// isolationStatus is check's line about --isolate on this machine.
func isolationStatus() string {
	sb, err := isolate.Start(isolate.Spec{Dir: "/"})
	if err != nil {
		return "not available: " + err.Error()
	}
	sb.Close()
	return "available"
}
