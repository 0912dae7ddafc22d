// Command agentvault runs an AI agent (or any command) with placeholders
// instead of real credentials, behind a session proxy that swaps the real
// values in only on HTTPS requests to the hosts each credential is bound to.
//
// Each subcommand is one thin file over the domain packages; this file holds
// the application and the mapping from failures to exit statuses.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// Set by goreleaser's ldflags.
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// Exit statuses of docs/cli.md (sysexits.h where one fits).
const (
	exitFailure     = 1  // init: the file exists or cannot be written
	exitDataErr     = 65 // audit: a line of the log is not a record
	exitNoInput     = 66 // audit: the log cannot be opened
	exitUsage       = 64
	exitSoftware    = 70
	exitConfig      = 78
	exitUnavailable = 69
)

// exitError carries an exit status and one line for stderr, written
// without the "agentvault: " prefix: runMain adds it, once for every
// message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

// statusOnly exits with a status and prints nothing: the child's own status.
type statusOnly int

func (s statusOnly) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "agentvault",
		Usage:     "run AI agents with placeholders instead of real credentials",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		// Flags after the command's own arguments belong to the command.
		UseShortOptionHandling: false,
		HideVersion:            true,
		Commands: []*cli.Command{
			runCommand(),
			checkCommand(),
			initCommand(),
			trustCommand(),
			presetsCommand(),
			auditCommand(),
			versionCommand(),
		},
		// Without an Action, urfave/cli answers an unknown command with "No
		// help topic for ..." — say what happened instead.
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fail(exitUsage, "unknown command %q (commands: run, check, init, trust, presets, audit, version)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		OnUsageError: func(c *cli.Context, err error, isSub bool) error {
			return fail(exitUsage, "%v (see agentvault --help)", err)
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main decides how to exit
	}
	for _, c := range app.Commands {
		c.OnUsageError = app.OnUsageError
	}
	return app
}

func main() {
	os.Exit(runMain(os.Args, os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).Run(args)
	if err == nil {
		return 0
	}
	var st statusOnly
	if errors.As(err, &st) {
		return int(st)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		fmt.Fprintln(stderr, "agentvault: "+ee.msg)
		return ee.code
	}
	// urfave/cli's own parse errors ("flag provided but not defined") and an
	// unknown command are usage errors.
	msg := err.Error()
	fmt.Fprintf(stderr, "agentvault: %s\n", strings.TrimPrefix(msg, "agentvault: "))
	return exitUsage
}
