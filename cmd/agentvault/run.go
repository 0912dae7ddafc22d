package main

import (
	"errors"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/agentvault/agentvault/audit"
	"github.com/agentvault/agentvault/backends"
	"github.com/agentvault/agentvault/config"
	"github.com/agentvault/agentvault/launcher"
	"github.com/agentvault/agentvault/proxy"
	"github.com/agentvault/agentvault/session"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command with placeholders instead of credentials, behind the session proxy",
		ArgsUsage: "-- COMMAND [ARGS...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "config file (default: $AGENTVAULT_CONFIG, ./agentvault.yaml, ~/.config/agentvault/config.yaml, else zero-config)"},
			&cli.StringFlag{Name: "audit-log", Usage: "append one JSON line per proxied request to `PATH`"},
			&cli.StringFlag{Name: "summary", Value: string(audit.FormatAuto), Usage: "exit summary on stderr: auto, pretty, plain, markdown, json or off"},
			&cli.BoolFlag{Name: "strict", Usage: "deny egress to hosts that are not allowed or credentialed"},
			&cli.StringSliceFlag{Name: "allow", Usage: "extra allowed host `PATTERN` (repeatable)"},
			&cli.StringSliceFlag{Name: "no-proxy", Usage: "extra NO_PROXY `ENTRY` for the command (repeatable)"},
			&cli.StringSliceFlag{Name: "upstream-ca", Usage: "extra PEM roots the proxy trusts for upstream TLS (repeatable)"},
			&cli.StringSliceFlag{Name: "connect-to", Usage: "HOST:PORT:ADDR:PORT2: dial ADDR:PORT2 for HOST:PORT, still verifying TLS for HOST (repeatable)"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "proxy listen `ADDR` (loopback only)"},
			&cli.BoolFlag{Name: "isolate", EnvVars: []string{"AGENTVAULT_ISOLATE"}, Usage: "Linux: run the command in its own namespaces, reaching only the proxy (see docs/isolation.md)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no banner, no summary"},
		},
		Action: runAction,
	}
}

// parseRunOptions turns run's flags into session options, refusing (exit 64)
// what is wrong without looking at any config.
func parseRunOptions(c *cli.Context) (session.Options, error) {
	o := session.Options{
		Argv:        c.Args().Slice(),
		ConfigPath:  c.String("config"),
		AuditLog:    c.String("audit-log"),
		Strict:      c.Bool("strict"),
		Allow:       c.StringSlice("allow"),
		NoProxy:     c.StringSlice("no-proxy"),
		UpstreamCAs: c.StringSlice("upstream-ca"),
		ConnectTo:   map[string]string{},
		Listen:      c.String("listen"),
		Isolate:     c.Bool("isolate"),
		Quiet:       c.Bool("quiet"),
	}
	if len(o.Argv) == 0 {
		return o, fail(exitUsage, "run needs a command: agentvault run [flags] -- COMMAND [ARGS...]")
	}
	s, err := audit.ParseFormat(c.String("summary"))
	if err != nil {
		return o, fail(exitUsage, "--summary: %v", err)
	}
	o.Summary = s
	for _, m := range c.StringSlice("connect-to") {
		from, to, err := proxy.ParseConnectTo(m)
		if err != nil {
			return o, fail(exitUsage, "%v", err)
		}
		o.ConnectTo[from] = to
	}
	for _, a := range o.Allow {
		if err := config.ValidEgressPattern(a); err != nil {
			return o, fail(exitUsage, "--allow %q: %v", a, err)
		}
	}
	if err := proxy.CheckListenAddr(o.Listen); err != nil {
		return o, fail(exitUsage, "%v", err)
	}
	return o, nil
}

func runAction(c *cli.Context) error {
	if launcher.Nested(os.Environ()) {
		return fail(exitUsage, "refusing to run inside another agentvault session (AGENTVAULT_SESSION=%s); the outer session already guards this process", os.Getenv("AGENTVAULT_SESSION"))
	}
	o, err := parseRunOptions(c)
	if err != nil {
		return err
	}
	o.Started = time.Now()
	// Both before any secret is fetched, in this order. The scrub zeroes the
	// environment block the kernel shows as /proc/<pid>/environ (os.Environ
	// and env: references read the runtime's own copy, which stays intact);
	// it writes through /proc/self/mem, which a non-root process can no
	// longer open once it is non-dumpable. Then nothing that runs as this
	// user, the child included, may read this process's memory, environment
	// or descriptors. They stay here, not in session, because they change
	// the whole process.
	if err := launcher.ScrubEnviron(); err != nil {
		o.Warnings = append(o.Warnings, "could not scrub the process environment block: "+err.Error())
	}
	if err := launcher.MakeNonDumpable(); err != nil {
		return fail(exitSoftware, "cannot protect the process memory: %v", err)
	}
	o.Cwd, _ = os.Getwd()
	o.Home, _ = os.UserHomeDir()
	o.Environ, o.LookupEnv, o.Open = os.Environ(), os.LookupEnv, backends.Open
	o.Stderr = c.App.ErrWriter
	status, err := session.Run(c.Context, o)
	if err != nil {
		return runFailure(err)
	}
	return statusOnly(status)
}

// runFailure maps a failed session to its exit status and one line.
func runFailure(err error) error {
	code := exitSoftware
	var re *session.RunError
	if errors.As(err, &re) {
		switch re.Kind {
		case session.FailConfig:
			code = exitConfig
		case session.FailUnavailable:
			code = exitUnavailable
		case session.FailStart:
			if se := (*launcher.StartError)(nil); errors.As(err, &se) {
				code = se.Code
			}
		}
	}
	return fail(code, "%v", err)
}

// configFailure is check's: the same mapping as run's.
func configFailure(err error) error { return runFailure(session.ConfigFailure(err)) }
