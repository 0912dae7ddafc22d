// Package session runs a session: it resolves a config's credentials through
// the backends, makes their placeholders, and drives the session CA, audit
// log, proxy and command from start to summary (Run).
package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentvault/agentvault/audit"
	"github.com/agentvault/agentvault/audit/otlp"
	"github.com/agentvault/agentvault/ca"
	"github.com/agentvault/agentvault/config"
	"github.com/agentvault/agentvault/launcher"
	"github.com/agentvault/agentvault/launcher/isolate"
	"github.com/agentvault/agentvault/proxy"
	"github.com/agentvault/agentvault/redact"
)

// Options is what the CLI parsed for one run, already validated: Run trusts
// the flag values and checks only what needs the config or the system.
type Options struct {
	Argv        []string          // the command; Argv[0] is looked up in Environ's PATH
	ConfigPath  string            // --config; "" = the usual search, else zero-config
	AuditLog    string            // --audit-log; overrides the config's audit.log
	Summary     audit.Format      // an audit format; "" or auto: pretty when Stderr is a terminal, else plain
	Strict      bool              // --strict
	Allow       []string          // extra egress allow patterns
	NoProxy     []string          // extra NO_PROXY entries for the command
	UpstreamCAs []string          // PEM files the proxy also trusts upstream
	ConnectTo   map[string]string // host:port -> addr:port, see proxy.ParseConnectTo
	Listen      string            // the proxy's loopback address
	Isolate     bool              // --isolate (the config's isolate: also turns it on)
	Quiet       bool              // no banner, no summary

	// Environ is agentvault's environment: the base of the command's and
	// where the command is looked up. LookupEnv reads the same variables
	// (config references, backends, the session directory, trusted roots,
	// GITHUB_STEP_SUMMARY).
	Environ   []string
	LookupEnv func(string) (string, bool)
	Cwd, Home string
	Open      Opener // opens backends; the CLI passes backends.Open

	// Stderr gets the banner, warnings and the summary. The command itself
	// inherits agentvault's own stdio.
	Stderr io.Writer
	// Warnings found before the session began (kept for the summary).
	Warnings []string
	// Started is when the run began, for the summary; zero = now.
	Started time.Time
}

// Run runs one session: config, sandbox, credentials, session CA and
// directory, audit log, proxy, the command, summary. It returns the
// command's exit status; err is a *RunError when the session failed, and
// status then matters only if the command had started. Every secret is
// resolved after the command was found and the sandbox set up, and nothing
// Run prints holds a secret value or a placeholder.
//
// A SIGINT, SIGTERM or SIGHUP before the command starts removes the session
// directory, closes the backends and exits the process with 128+signal;
// once the command runs, signals are the launcher's to forward.
func Run(ctx context.Context, opts Options) (int, error) {
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	r := &runner{opts: opts, stderr: opts.Stderr, id: newSessionID()}
	r.warnings = append(r.warnings, opts.Warnings...)
	return r.run(ctx)
}

// runner holds one session's state from config to summary.
type runner struct {
	opts     Options
	stderr   io.Writer
	id       string
	cfg      *config.Config
	resolved *Resolved
	dir      *ca.Dir
	prx      *proxy.Proxy
	log      *audit.Log
	coll     *audit.Collector
	warnMu   sync.Mutex
	warnings []string
	notes    []string
	// autoLogin names the logins zero-config mode chose (autoLogins): one
	// that cannot be brokered is left out with a note, not an error.
	autoLogin map[string]bool
	childUp   atomic.Bool
	lives     map[string]*Live
	sandbox   *isolate.Sandbox // nil unless isolated
	otlp      *otlp.Exporter   // audit.otlp (runotlp.go); nil when not configured
	otlpEnv   []string         // variables audit.otlp.headers read, kept from the command
	logins    []*login         // brokered subscription logins (logins.go)
	// auditWarned says the one audit-log write warning was printed: a
	// failing log would otherwise repeat it on every request.
	auditWarned atomic.Bool
	// redactor masks every secret value (current and rotated-out, in every
	// encoding) and placeholder in what agentvault prints; the proxy shares it.
	redactor redact.Redactor
	// roots waits for the trusted roots, read and parsed while the config
	// loads and the credentials resolve (loadRootsAside).
	roots func() (*ca.Roots, error)
}

// loadRootsAside starts reading and parsing the trusted roots, most of a
// session's own start-up time, and returns the function that waits for them.
func loadRootsAside(lookupEnv func(string) (string, bool)) func() (*ca.Roots, error) {
	var roots *ca.Roots
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		roots, err = ca.LoadRoots(lookupEnv)
	}()
	return func() (*ca.Roots, error) {
		<-done
		return roots, err
	}
}

func (r *runner) run(ctx context.Context) (int, error) {
	r.roots = loadRootsAside(r.opts.LookupEnv)
	cfg, err := config.Load(config.LoadOptions{Path: r.opts.ConfigPath, LookupEnv: r.opts.LookupEnv, Cwd: r.opts.Cwd, Home: r.opts.Home})
	if err != nil {
		return 0, ConfigFailure(err)
	}
	r.cfg = cfg
	r.applyFlags()
	r.autoLogins() // before the sandbox, which hides the logins' stores

	// Look the command up before resolving anything: a typo should not lease secrets.
	if _, err := launcher.Resolve(r.opts.Argv[0], r.opts.Environ); err != nil {
		return 0, startFailure(err)
	}
	if r.opts.Isolate || cfg.Isolate.Enabled {
		if err := r.startSandbox(); err != nil {
			return 0, err
		}
		defer r.sandbox.Close()
	}

	r.resolved, err = Resolve(ctx, cfg, r.opts.Open, r.opts.LookupEnv)
	if err != nil {
		var re *ResolveError
		if errors.As(err, &re) {
			return 0, &RunError{Kind: FailUnavailable, Err: err}
		}
		return 0, ConfigFailure(err)
	}
	defer r.closeBackends()
	r.lives = map[string]*Live{}
	for _, c := range r.resolved.Credentials {
		name := c.Credential.Name
		r.redactor.AddPlaceholder(name, c.Placeholder)
		r.lives[name] = r.resolved.Live(name, r.warn, func(v string) { r.redactor.AddSecret(name, v) })
	}

	stop := r.cleanupOnSignal()
	defer stop()

	status, err := r.serveAndLaunch(ctx)
	// A failure before the command started is said by its own error line;
	// a summary would report an exit status the command never had.
	r.finish(status, err == nil || r.childUp.Load())
	return status, err
}

// applyFlags merges run's flags into the config (flags win).
func (r *runner) applyFlags() {
	e := &r.cfg.Egress
	if r.opts.Strict {
		e.Default = config.EgressDeny
	}
	e.Allow = append(e.Allow, r.opts.Allow...)
	e.NoProxy = append(e.NoProxy, r.opts.NoProxy...)
	if r.opts.AuditLog != "" {
		r.cfg.Audit.Log = r.opts.AuditLog
	}
}

func (r *runner) warn(w string) {
	r.warnMu.Lock()
	defer r.warnMu.Unlock()
	r.warnings = append(r.warnings, r.mask(w))
}

func (r *runner) snapshotWarnings() []string {
	r.warnMu.Lock()
	defer r.warnMu.Unlock()
	return append([]string(nil), r.warnings...)
}

// say prints one line of agentvault's own on Stderr; the prefix tells the
// user it is not the command's.
func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.stderr, "agentvault: "+format+"\n", args...)
}

// mask replaces every known secret value (current and rotated-out, in any
// encoding) and placeholder in text agentvault prints.
func (r *runner) mask(s string) string { return r.redactor.String(s) }

// refresh is the proxy's Refresh hook: it re-resolves a credential that an
// upstream refused.
func (r *runner) refresh(ctx context.Context, name string) (bool, error) {
	l := r.lives[name]
	if l == nil {
		return false, fmt.Errorf("no credential %q", name)
	}
	return l.Refresh(ctx)
}

// closeBackends gets its own deadline: it runs when the run's context may
// already be cancelled, and leases must still be revoked.
func (r *runner) closeBackends() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.resolved.Close(ctx); err != nil {
		r.say("warning: closing backends: %v", r.mask(err.Error()))
	}
}

func startFailure(err error) error {
	return &RunError{Kind: FailStart, Err: err}
}

func newSessionID() string { return "av-" + randomHex(4) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
