package session

import (
	"crypto/x509"
	"net"
	"net/http"
	"time"

	"github.com/agentvault/agentvault/audit"
	"github.com/agentvault/agentvault/ca"
	"github.com/agentvault/agentvault/config"
	"github.com/agentvault/agentvault/proxy"
)

// sessionTrust is what the session CA set-up hands the proxy and the child.
type sessionTrust struct {
	authority *ca.Authority
	pool      *x509.CertPool // the proxy's upstream roots
	bundle    string         // the child's trust bundle: the roots plus the session CA
	caPath    string         // the session CA alone
}

// setUpTrust creates the session CA, name-constrained to the hosts the proxy
// decrypts (proxy.Intercepted), and the session directory with the child's
// trust bundle. The directory is r.dir, which the caller removes.
func (r *runner) setUpTrust() (*sessionTrust, error) {
	in := proxy.Intercepted(r.proxyCredentials(), proxyEgress(r.cfg.Egress))
	if in.Any {
		r.notes = append(r.notes, "egress.inspect: all under default allow: the session CA could not be name-constrained")
	}
	authority, err := ca.New(ca.Options{Hosts: in.Hosts, Unconstrained: in.Any, Lifetime: 24 * time.Hour, SessionID: r.id})
	if err != nil {
		return nil, runErr(FailInternal, "session CA: %w", err)
	}
	r.dir, err = ca.NewDir(r.opts.LookupEnv, r.id)
	if err != nil {
		return nil, runErr(FailInternal, "session directory: %w", err)
	}
	roots, err := r.roots()
	if err != nil {
		return nil, runErr(FailConfig, "trusted roots: %w", err)
	}
	pool := roots.Pool()
	var extra [][]byte
	for _, path := range r.opts.UpstreamCAs {
		pem, err := ca.ReadPEMCerts(path)
		if err != nil {
			return nil, runErr(FailConfig, "--upstream-ca: %w", err)
		}
		pool.AppendCertsFromPEM(pem)
		extra = append(extra, pem)
	}
	bundle, caPath, err := r.dir.WriteBundle(roots.PEM, extra, authority.CertPEM())
	if err != nil {
		return nil, runErr(FailInternal, "writing the trust bundle: %w", err)
	}
	return &sessionTrust{authority: authority, pool: pool, bundle: bundle, caPath: caPath}, nil
}

// startProxy starts the session proxy (and its listener inside the sandbox)
// behind a random password; the caller closes r.prx.
func (r *runner) startProxy(t *sessionTrust, password string) (net.Addr, error) {
	r.prx = &proxy.Proxy{
		Password:      password,
		CA:            t.authority.Certificate(),
		CAKey:         t.authority.Signer(),
		Credentials:   r.proxyCredentials(),
		Refresh:       r.refresh,
		Egress:        proxyEgress(r.cfg.Egress),
		Guard:         proxy.Guard{Leak: r.cfg.Guard.Leak, Reflection: r.cfg.Guard.Reflection},
		RootCAs:       t.pool,
		ConnectTo:     r.opts.ConnectTo,
		UpstreamProxy: http.ProxyFromEnvironment,
		Record:        r.record,
		Redactor:      &r.redactor,
		TokenBrokers:  r.tokenBrokers(),
	}
	addr, err := r.prx.Start(r.opts.Listen)
	if err != nil {
		return nil, runErr(FailInternal, "proxy: %w", err)
	}
	if r.sandbox != nil {
		if err := r.serveInSandbox(addr); err != nil {
			return nil, err
		}
	}
	return addr, nil
}

// proxyCredentials maps the resolved credentials onto the proxy's, each
// reading its value from a Live so a rotated value takes effect.
func (r *runner) proxyCredentials() []*proxy.Credential {
	creds := r.resolved.Credentials
	out := make([]*proxy.Credential, 0, len(creds))
	for _, c := range creds {
		live := r.lives[c.Credential.Name]
		pc := &proxy.Credential{
			Name:        c.Credential.Name,
			Placeholder: c.Placeholder,
			Hosts:       c.Credential.Hosts,
			Methods:     c.Credential.Methods,
			Paths:       c.Credential.Paths,
			Secret:      live.Value,
		}
		for _, in := range c.Credential.Inject {
			pc.Inject = append(pc.Inject, proxy.Injection{
				Type: in.Type, Username: in.Username, Name: in.Name, Format: in.Format, Hosts: in.Hosts,
			})
		}
		out = append(out, pc)
	}
	return append(out, r.loginCredentials()...)
}

func proxyEgress(e config.Egress) proxy.Egress {
	return proxy.Egress{
		DefaultDeny: e.Default == config.EgressDeny,
		Allow:       e.Allow,
		Deny:        e.Deny,
		InspectAll:  e.Inspect == config.InspectAll,
	}
}

// openAudit opens the audit log, if one is configured, before the proxy can
// record anything; the summary's collector always exists.
func (r *runner) openAudit() error {
	r.coll = audit.NewCollector()
	if r.cfg.Audit.Log == "" {
		return nil
	}
	l, err := audit.OpenLog(r.cfg.Audit.Log, r.id)
	if err != nil {
		return runErr(FailConfig, "audit log: %w", err)
	}
	r.log = l
	return nil
}

// record is the proxy's Record hook: the audit log first (flushed per line),
// then the OTLP exporter's queue (never blocks), then the summary's collector.
func (r *runner) record(rec proxy.Record) {
	if r.log != nil {
		if err := r.log.Write(rec); err != nil {
			r.warnOnce("audit log write failed: " + err.Error())
		}
	}
	r.otlp.Add(rec)
	r.coll.Add(rec)
}

func (r *runner) warnOnce(msg string) {
	if r.auditWarned.CompareAndSwap(false, true) {
		r.say("warning: %s", msg)
	}
}
