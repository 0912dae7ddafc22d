package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/agentvault/agentvault/backends"
	"github.com/agentvault/agentvault/ca"
	"github.com/agentvault/agentvault/hostpattern"
	"github.com/agentvault/agentvault/launcher"
	"github.com/agentvault/agentvault/launcher/isolate"
	"github.com/agentvault/agentvault/proxy"
	"github.com/agentvault/agentvault/redact"
	"github.com/agentvault/agentvault/session"
	"github.com/agentvault/agentvault/session/audit"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command with placeholders instead of credentials, behind the session proxy",
		ArgsUsage: "-- COMMAND [ARGS...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "config file (default: $AGENTVAULT_CONFIG, ./agentvault.yaml, ~/.config/agentvault/config.yaml, else zero-config)"},
			&cli.StringFlag{Name: "audit-log", Usage: "append one JSON line per proxied request to `PATH`"},
			&cli.StringFlag{Name: "summary", Value: "auto", Usage: "exit summary on stderr: auto, pretty, plain, markdown, json or off"},
			&cli.BoolFlag{Name: "strict", Usage: "deny egress to hosts that are not allowed or credentialed"},
			&cli.StringSliceFlag{Name: "allow", Usage: "extra allowed host `PATTERN` (repeatable)"},
			&cli.StringSliceFlag{Name: "no-proxy", Usage: "extra NO_PROXY `ENTRY` for the command (repeatable)"},
			&cli.StringSliceFlag{Name: "upstream-ca", Usage: "extra PEM roots the proxy trusts for upstream TLS (repeatable)"},
			&cli.StringSliceFlag{Name: "connect-to", Usage: "HOST:PORT:ADDR:PORT2: dial ADDR:PORT2 for HOST:PORT, still verifying TLS for HOST (repeatable)"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "proxy listen `ADDR` (loopback only)"},
			&cli.BoolFlag{Name: "isolate", EnvVars: []string{"AGENTVAULT_ISOLATE"}, Usage: "Linux: run the command in its own namespaces, reaching only the proxy (see docs/isolation.md)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no banner, no summary"},
		},
		Action: func(c *cli.Context) error {
			return runAction(c)
		},
	}
}

// runOptions is the parsed command line of run.
type runOptions struct {
	configPath  string
	auditLog    string
	summary     string
	strict      bool
	allow       []string
	noProxy     []string
	upstreamCAs []string
	connectTo   map[string]string
	listen      string
	isolate     bool
	quiet       bool
	argv        []string
}

func parseRunOptions(c *cli.Context) (*runOptions, error) {
	o := &runOptions{
		configPath:  c.String("config"),
		auditLog:    c.String("audit-log"),
		strict:      c.Bool("strict"),
		allow:       c.StringSlice("allow"),
		noProxy:     c.StringSlice("no-proxy"),
		upstreamCAs: c.StringSlice("upstream-ca"),
		connectTo:   map[string]string{},
		listen:      c.String("listen"),
		isolate:     c.Bool("isolate"),
		quiet:       c.Bool("quiet"),
		argv:        c.Args().Slice(),
	}
	if len(o.argv) == 0 {
		return nil, fail(exitUsage, "agentvault: run needs a command: agentvault run [flags] -- COMMAND [ARGS...]")
	}
	s, err := audit.ParseFormat(c.String("summary"))
	if err != nil {
		return nil, fail(exitUsage, "agentvault: --summary: %v", err)
	}
	o.summary = s
	for _, m := range c.StringSlice("connect-to") {
		from, to, err := proxy.ParseConnectTo(m)
		if err != nil {
			return nil, fail(exitUsage, "agentvault: %v", err)
		}
		o.connectTo[from] = to
	}
	for _, a := range o.allow {
		if err := session.ValidEgressPattern(a); err != nil {
			return nil, fail(exitUsage, "agentvault: --allow %q: %v", a, err)
		}
	}
	if err := proxy.CheckListenAddr(o.listen); err != nil {
		return nil, fail(exitUsage, "agentvault: %v", err)
	}
	return o, nil
}

func runAction(c *cli.Context) error {
	if launcher.Nested(os.Environ()) {
		return fail(exitUsage, "agentvault: refusing to run inside another agentvault session (AGENTVAULT_SESSION=%s); the outer session already guards this process", os.Getenv("AGENTVAULT_SESSION"))
	}
	o, err := parseRunOptions(c)
	if err != nil {
		return err
	}
	r := &runner{opts: o, stderr: c.App.ErrWriter, started: time.Now()}
	// Both before any secret is fetched, in this order. The scrub zeroes the
	// environment block the kernel shows as /proc/<pid>/environ (env:
	// references read the runtime's own copy, which stays intact); it writes
	// through /proc/self/mem, which a non-root process can no longer open
	// once it is non-dumpable. Then nothing that runs as this user, the child
	// included, may read this process's memory, environment or descriptors.
	if err := launcher.ScrubEnviron(); err != nil {
		r.warn("could not scrub the process environment block: " + err.Error())
	}
	if err := launcher.MakeNonDumpable(); err != nil {
		return fail(exitSoftware, "agentvault: cannot protect the process memory: %v", err)
	}
	return r.run(c.Context)
}

// runner holds one session's state from config to summary.
type runner struct {
	opts     *runOptions
	stderr   interface{ Write([]byte) (int, error) }
	started  time.Time
	id       string
	cfg      *session.Config
	resolved *session.Resolved
	dir      *ca.Dir
	prx      *proxy.Proxy
	log      *audit.Log
	coll     *audit.Collector
	warnMu   sync.Mutex
	warnings []string
	notes    []string
	childUp  atomic.Bool
	lives    map[string]*session.Live
	sandbox  *isolate.Sandbox // nil unless --isolate
	// redactor masks every secret value (current and rotated-out, in every
	// encoding) and placeholder in what agentvault prints; the proxy shares it.
	redactor redact.Redactor
}

func (r *runner) warn(w string) {
	r.warnMu.Lock()
	defer r.warnMu.Unlock()
	r.warnings = append(r.warnings, r.mask(w))
}

// refresh is the proxy's Refresh hook: it re-resolves a credential that an
// upstream refused.
func (r *runner) refresh(ctx context.Context, name string) (bool, error) {
	l := r.lives[name]
	if l == nil {
		return false, fmt.Errorf("no credential %q", name)
	}
	return l.Refresh(ctx)
}

func (r *runner) run(ctx context.Context) error {
	r.id = newSessionID()
	cwd, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	cfg, err := session.Load(session.LoadOptions{Path: r.opts.configPath, LookupEnv: os.LookupEnv, Cwd: cwd, Home: home})
	if err != nil {
		return configFailure(err)
	}
	r.cfg = cfg
	r.applyFlags()

	// Look the command up before resolving anything: a typo should not lease secrets.
	env := os.Environ()
	if _, err := launcher.Resolve(r.opts.argv[0], env); err != nil {
		return startFailure(err)
	}
	if r.opts.isolate || cfg.Isolate.Enabled {
		if err := r.startSandbox(cwd, home); err != nil {
			return err
		}
		defer r.sandbox.Close()
	}

	r.resolved, err = session.Resolve(ctx, cfg, backends.Open, os.LookupEnv)
	if err != nil {
		var re *session.ResolveError
		if errors.As(err, &re) {
			return fail(exitUnavailable, "agentvault: %v", err)
		}
		return configFailure(err)
	}
	defer r.closeBackends()
	r.lives = map[string]*session.Live{}
	for _, c := range r.resolved.Credentials {
		name := c.Credential.Name
		r.redactor.AddPlaceholder(name, c.Placeholder)
		r.lives[name] = r.resolved.Live(name, r.warn, func(v string) { r.redactor.AddSecret(name, v) })
	}

	stop := r.cleanupOnSignal()
	defer stop()

	status, err := r.serveAndLaunch(ctx, env)
	// A failure before the command started is said by its own error line;
	// a summary would report an exit status the command never had.
	r.finish(status, err == nil || r.childUp.Load())
	if err != nil {
		return err
	}
	return statusOnly(status)
}

// applyFlags merges run's flags into the config (flags win).
func (r *runner) applyFlags() {
	e := &r.cfg.Egress
	if r.opts.strict {
		e.Default = session.EgressDeny
	}
	e.Allow = append(e.Allow, r.opts.allow...)
	e.NoProxy = append(e.NoProxy, r.opts.noProxy...)
	if r.opts.auditLog != "" {
		r.cfg.Audit.Log = r.opts.auditLog
	}
}

func (r *runner) closeBackends() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.resolved.Close(ctx); err != nil {
		fmt.Fprintf(r.stderr, "agentvault: warning: closing backends: %v\n", r.mask(err.Error()))
	}
}

// cleanupOnSignal removes the session directory if agentvault is told to stop
// before the child runs; once it runs, the launcher forwards signals and the
// normal path cleans up.
func (r *runner) cleanupOnSignal() func() {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigc:
			if r.childUp.Load() {
				return
			}
			if r.dir != nil {
				r.dir.Remove()
			}
			r.closeBackends()
			os.Exit(128 + int(sig.(syscall.Signal)))
		case <-done:
		}
	}()
	return func() { signal.Stop(sigc); close(done) }
}

func (r *runner) serveAndLaunch(ctx context.Context, env []string) (int, error) {
	creds := r.resolved.Credentials
	var hosts []string
	for _, c := range creds {
		hosts = append(hosts, c.Credential.Hosts...)
	}
	inspectAll := r.cfg.Egress.Inspect == session.InspectAll
	unconstrained := false
	if inspectAll {
		if r.cfg.Egress.Default == session.EgressDeny {
			for _, h := range r.cfg.Egress.Allow {
				// IP targets (with or without a port) are never MITM'd;
				// the CA excludes every IP range.
				if p, err := hostpattern.ParseEgress(h); err == nil && !p.IsIP() {
					hosts = append(hosts, h)
				}
			}
		} else {
			unconstrained = true
			r.notes = append(r.notes, "egress.inspect: all under default allow: the session CA could not be name-constrained")
		}
	}
	authority, err := ca.New(ca.Options{Hosts: hosts, Unconstrained: unconstrained, Lifetime: 24 * time.Hour, SessionID: r.id})
	if err != nil {
		return 0, fail(exitSoftware, "agentvault: session CA: %v", err)
	}
	r.dir, err = ca.NewDir(os.LookupEnv, r.id)
	if err != nil {
		return 0, fail(exitSoftware, "agentvault: session directory: %v", err)
	}
	defer r.dir.Remove()

	roots, err := ca.TrustedRoots(os.LookupEnv)
	if err != nil {
		return 0, fail(exitConfig, "agentvault: trusted roots: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(roots)
	var extra [][]byte
	for _, path := range r.opts.upstreamCAs {
		pem, err := ca.ReadPEMCerts(path)
		if err != nil {
			return 0, fail(exitConfig, "agentvault: --upstream-ca: %v", err)
		}
		pool.AppendCertsFromPEM(pem)
		extra = append(extra, pem)
	}
	bundle, caPath, err := r.dir.WriteBundle(roots, extra, authority.CertPEM())
	if err != nil {
		return 0, fail(exitSoftware, "agentvault: writing the trust bundle: %v", err)
	}

	if err := r.openAudit(); err != nil {
		return 0, err
	}
	password := randomHex(24)
	r.prx = &proxy.Proxy{
		Password:      password,
		CA:            authority.Certificate(),
		CAKey:         authority.Signer(),
		Credentials:   r.proxyCredentials(),
		Refresh:       r.refresh,
		Egress:        proxyEgress(r.cfg.Egress),
		Guard:         proxy.Guard{Leak: r.cfg.Guard.Leak, Reflection: r.cfg.Guard.Reflection},
		RootCAs:       pool,
		ConnectTo:     r.opts.connectTo,
		UpstreamProxy: http.ProxyFromEnvironment,
		Record:        r.record,
		Redactor:      &r.redactor,
	}
	addr, err := r.prx.Start(r.opts.listen)
	if err != nil {
		return 0, fail(exitSoftware, "agentvault: proxy: %v", err)
	}
	defer r.prx.Close()
	if r.sandbox != nil {
		if err := r.serveInSandbox(addr); err != nil {
			return 0, err
		}
	}
	proxyURL := fmt.Sprintf("http://agentvault:%s@%s", password, addr.String())

	placeholders, remove, err := childCredentialEnv(creds)
	if err != nil {
		return 0, err
	}
	childEnv := launcher.BuildEnv(launcher.EnvSpec{
		Base:         env,
		ProxyURL:     proxyURL,
		NoProxy:      r.cfg.Egress.NoProxy,
		BundlePath:   bundle,
		CAPath:       caPath,
		SessionID:    r.id,
		Placeholders: placeholders,
		Remove:       append(r.resolved.Consumed(), remove...),
	})
	if err := r.banner(addr.String(), childEnv, placeholders); err != nil {
		return 0, err
	}
	r.childUp.Store(true)
	cmd := launcher.Cmd{Argv: r.opts.argv, Env: childEnv}
	if r.sandbox != nil {
		cmd.Sandbox = r.sandbox
	}
	status, err := launcher.Run(ctx, cmd)
	if err != nil {
		return status, startFailure(err)
	}
	return status, nil
}

func (r *runner) openAudit() error {
	r.coll = audit.NewCollector()
	if r.cfg.Audit.Log == "" {
		return nil
	}
	l, err := audit.OpenLog(r.cfg.Audit.Log, r.id)
	if err != nil {
		return fail(exitConfig, "agentvault: audit log: %v", err)
	}
	r.log = l
	return nil
}

// record is the proxy's Record hook: the audit log first (flushed per line),
// then the summary's collector.
func (r *runner) record(rec proxy.Record) {
	if r.log != nil {
		if err := r.log.Write(rec); err != nil {
			r.warnOnce("audit log write failed: " + err.Error())
		}
	}
	r.coll.Add(rec)
}

var auditWarned atomic.Bool

func (r *runner) warnOnce(msg string) {
	if auditWarned.CompareAndSwap(false, true) {
		fmt.Fprintf(r.stderr, "agentvault: warning: %s\n", msg)
	}
}

// banner tells the user, before the child starts, what the session
// protects, and names (never the values of) the credential-like variables the
// child would get as they are. Zero-config mode under --strict refuses to
// start instead (exit 78): agentvault guessed what to protect, and the user
// asked for an untrusted agent's settings; a config file is the user's own
// choice of what to protect, so there it stays a warning. The warning is
// also kept for the summary, which CI reads more than the banner.
func (r *runner) banner(addr string, childEnv []string, placeholders map[string]string) error {
	unprotected := strings.Join(session.UnprotectedCredentials(childEnv, func(name string) bool {
		_, ok := placeholders[name]
		return ok
	}), ", ")
	const how = "protect each with a credential in a config file (secret: env:NAME and the hosts it is for; see agentvault init), or unset it (env -u NAME agentvault run ...)"
	if unprotected != "" && r.cfg.ZeroConfig && r.opts.strict {
		return fail(exitConfig, "agentvault: --strict: refusing to start: credential-like variables would reach the command unprotected: %s; %s", unprotected, how)
	}
	if unprotected != "" {
		r.warn("credential-like variables reached the command unprotected: " + unprotected)
	}
	if r.opts.quiet {
		return nil
	}
	names := make([]string, 0, len(r.resolved.Credentials))
	for _, c := range r.resolved.Credentials {
		names = append(names, c.Credential.Name)
	}
	mode := "config " + r.cfg.File
	if r.cfg.ZeroConfig {
		mode = "zero-config"
	}
	list := "none"
	if len(names) > 0 {
		list = strings.Join(names, ", ")
	}
	fmt.Fprintf(r.stderr, "agentvault: session %s (%s), credentials: %s, proxy %s\n", r.id, mode, list, addr)
	if unprotected != "" {
		fmt.Fprintf(r.stderr, "agentvault: warning: credential-like variables reach the command unprotected: %s; %s\n", unprotected, how)
	}
	return nil
}

// finish closes the proxy and the audit log and prints the summary.
func (r *runner) finish(status int, summarize bool) {
	if r.prx != nil {
		r.prx.Close()
	}
	if r.log != nil {
		r.log.Close()
	}
	if r.coll == nil || !summarize {
		return
	}
	s := r.coll.Summary(audit.Summary{
		Session:    r.id,
		Command:    r.opts.argv,
		Start:      r.started,
		Duration:   time.Since(r.started),
		ExitStatus: status,
		Warnings:   r.snapshotWarnings(),
		Notes:      r.notes,
	})
	format := r.opts.summary
	if r.opts.quiet {
		format = "off"
	}
	if format == "auto" {
		format = "plain"
		if f, ok := r.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "pretty"
		}
	}
	if format != "off" {
		if err := audit.Render(r.stderr, s, format, r.mask); err != nil {
			fmt.Fprintf(r.stderr, "agentvault: summary: %v\n", err)
		}
	}
	if path := os.Getenv("GITHUB_STEP_SUMMARY"); path != "" {
		// The child inherits the variable and could have swapped the file
		// for a link to one of the user's own files.
		f, err := audit.OpenAppend(path)
		if err != nil {
			fmt.Fprintf(r.stderr, "agentvault: warning: GITHUB_STEP_SUMMARY: %v\n", r.mask(err.Error()))
			return
		}
		audit.Render(f, s, "markdown", r.mask)
		f.Close()
	}
}

func (r *runner) snapshotWarnings() []string {
	r.warnMu.Lock()
	defer r.warnMu.Unlock()
	return append([]string(nil), r.warnings...)
}

// mask replaces every known secret value (current and rotated-out, in any
// encoding) and placeholder in text agentvault prints.
func (r *runner) mask(s string) string { return r.redactor.String(s) }

// childCredentialEnv gives each credential's env: names its placeholder, and
// the child of an aws-sigv4 credential well-formed dummy AWS keys to sign with.
func childCredentialEnv(creds []session.ResolvedCredential) (map[string]string, []string, error) {
	env := map[string]string{}
	var remove []string
	for _, c := range creds {
		for _, name := range c.Credential.Env {
			env[name] = c.Placeholder
		}
		if !c.Credential.HasInject(session.InjectAWSSigV4) {
			continue
		}
		dummies, err := proxy.AWSDummyEnv(c.Secret.Value)
		if err != nil {
			return nil, nil, fail(exitUnavailable, "agentvault: credential %q: %v", c.Credential.Name, err)
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

// proxyCredentials maps the resolved credentials onto the proxy's, each
// reading its value from a session.Live so a rotated value takes effect.
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
	return out
}

func proxyEgress(e session.Egress) proxy.Egress {
	return proxy.Egress{
		DefaultDeny: e.Default == session.EgressDeny,
		Allow:       e.Allow,
		Deny:        e.Deny,
		InspectAll:  e.Inspect == session.InspectAll,
	}
}

func configFailure(err error) error {
	var ce *session.ConfigError
	if errors.As(err, &ce) {
		return fail(exitConfig, "agentvault: %v", err)
	}
	return fail(exitConfig, "agentvault: config: %v", err)
}

func startFailure(err error) error {
	var se *launcher.StartError
	if errors.As(err, &se) {
		return fail(se.Code, "agentvault: %v", err)
	}
	return fail(exitSoftware, "agentvault: %v", err)
}

func newSessionID() string { return "av-" + randomHex(4) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
