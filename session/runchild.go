package session

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/agentvault/agentvault/launcher"
	"github.com/agentvault/agentvault/proxy"
	"github.com/agentvault/agentvault/vocab"
)

// serveAndLaunch sets up the session CA, directory, audit log and proxy,
// builds the child's environment and runs the command. Everything it starts
// it also stops, in reverse order, once the command has exited.
func (r *runner) serveAndLaunch(ctx context.Context) (int, error) {
	if err := r.openLogins(); err != nil { // logins.go
		return 0, err
	}
	trust, err := r.setUpTrust()
	if r.dir != nil {
		defer r.dir.Remove()
	}
	if err != nil {
		return 0, err
	}
	if err := r.openAudit(); err != nil {
		return 0, err
	}
	if err := r.startOTLP(trust); err != nil {
		return 0, err
	}
	password := randomHex(24)
	addr, err := r.startProxy(trust, password)
	if r.prx != nil {
		defer r.prx.Close()
	}
	if err != nil {
		return 0, err
	}
	proxyURL := fmt.Sprintf("http://%s:%s@%s", vocab.ProxyUser, password, addr.String())

	placeholders, remove, err := childCredentialEnv(r.resolved.Credentials)
	if err != nil {
		return 0, err
	}
	loginEnv, err := r.writeLogins()
	if err != nil {
		return 0, err
	}
	for k, v := range loginEnv {
		placeholders[k] = v
	}
	childEnv := launcher.BuildEnv(launcher.EnvSpec{
		Base:         r.opts.Environ,
		ProxyURL:     proxyURL,
		NoProxy:      r.cfg.Egress.NoProxy,
		BundlePath:   trust.bundle,
		CAPath:       trust.caPath,
		SessionID:    r.id,
		Placeholders: placeholders,
		Remove:       append(append(r.resolved.Consumed(), remove...), r.otlpEnv...),
	})
	if err := r.banner(addr, childEnv, placeholders); err != nil {
		return 0, err
	}
	r.childUp.Store(true)
	cmd := launcher.Cmd{Argv: r.opts.Argv, Env: childEnv}
	if r.sandbox != nil {
		cmd.Sandbox = r.sandbox
	}
	status, err := launcher.Run(ctx, cmd)
	r.writeBackLogins()
	if err != nil {
		return status, startFailure(err)
	}
	return status, nil
}

// childCredentialEnv gives each credential's env: names its placeholder, and
// the child of an aws-sigv4 credential well-formed dummy AWS keys to sign with.
func childCredentialEnv(creds []ResolvedCredential) (map[string]string, []string, error) {
	env := map[string]string{}
	var remove []string
	for _, c := range creds {
		for _, name := range c.Credential.Env {
			env[name] = c.Placeholder
		}
		if !c.Credential.HasInject(vocab.InjectAWSSigV4) {
			continue
		}
		dummies, err := proxy.AWSDummyEnv(c.Secret.Value)
		if err != nil {
			return nil, nil, runErr(FailUnavailable, "credential %q: %w", c.Credential.Name, err)
		}
		if _, ok := dummies["AWS_SESSION_TOKEN"]; !ok {
			remove = append(remove, "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
		}
		for k, v := range dummies {
			env[k] = v
		}
	}
	return env, remove, nil
}

// banner tells the user, before the child starts, what the session
// protects, and names (never the values of) the credential-like variables the
// child would get as they are. Zero-config mode under --strict refuses to
// start instead (FailConfig): agentvault guessed what to protect, and the
// user asked for an untrusted agent's settings; a config file is the user's
// own choice of what to protect, so there it stays a warning. The warning is
// also kept for the summary, which CI reads more than the banner.
func (r *runner) banner(addr net.Addr, childEnv []string, placeholders map[string]string) error {
	unprotected := strings.Join(UnprotectedCredentials(childEnv, func(name string) bool {
		_, ok := placeholders[name]
		return ok
	}), ", ")
	const how = "protect each with a credential in a config file (secret: env:NAME and the hosts it is for; see agentvault init), or unset it (env -u NAME agentvault run ...)"
	if unprotected != "" && r.cfg.ZeroConfig && r.opts.Strict {
		return runErr(FailConfig, "--strict: refusing to start: credential-like variables would reach the command unprotected: %s; %s", unprotected, how)
	}
	if unprotected != "" {
		r.warn("credential-like variables reached the command unprotected: " + unprotected)
	}
	if r.opts.Quiet {
		return nil
	}
	names := make([]string, 0, len(r.resolved.Credentials))
	for _, c := range r.resolved.Credentials {
		names = append(names, c.Credential.Name)
	}
	for _, l := range r.logins {
		names = append(names, l.name) // a brokered subscription login
	}
	mode := "config " + r.cfg.File
	if r.cfg.ZeroConfig {
		mode = "zero-config"
	}
	list := "none"
	if len(names) > 0 {
		list = strings.Join(names, ", ")
	}
	r.say("session %s (%s), credentials: %s, proxy %s", r.id, mode, list, addr)
	if unprotected != "" {
		r.say("warning: credential-like variables reach the command unprotected: %s; %s", unprotected, how)
	}
	return nil
}
