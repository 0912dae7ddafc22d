package session

import (
	"os"
	"time"

	"golang.org/x/term"

	"github.com/agentvault/agentvault/audit"
)

// finish closes the proxy and the audit log and flushes the OTLP exporter
// (within otlpFlush), so no record arrives after the summary is computed,
// and prints the summary to Stderr and, in GitHub
// Actions, appends it to the step summary.
func (r *runner) finish(status int, summarize bool) {
	if r.prx != nil {
		r.prx.Close()
	}
	if r.log != nil {
		r.log.Close()
	}
	r.stopOTLP()
	if r.coll == nil || !summarize {
		return
	}
	s := r.coll.Summary(audit.Summary{
		Session:    r.id,
		Command:    r.opts.Argv,
		Start:      r.opts.Started,
		Duration:   time.Since(r.opts.Started),
		ExitStatus: status,
		Warnings:   r.snapshotWarnings(),
		Notes:      r.notes,
	})
	format := r.opts.Summary
	if r.opts.Quiet {
		format = audit.FormatOff
	}
	if format == "" || format == audit.FormatAuto {
		format = audit.FormatPlain
		if f, ok := r.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = audit.FormatPretty
		}
	}
	if format != audit.FormatOff {
		if err := audit.Render(r.stderr, s, format, r.mask); err != nil {
			r.say("summary: %v", err)
		}
	}
	if path, _ := r.opts.LookupEnv("GITHUB_STEP_SUMMARY"); path != "" {
		// The child inherits the variable and could have swapped the file
		// for a link to one of the user's own files.
		f, err := audit.OpenAppend(path)
		if err != nil {
			r.say("warning: GITHUB_STEP_SUMMARY: %v", r.mask(err.Error()))
			return
		}
		audit.Render(f, s, audit.FormatMarkdown, r.mask)
		f.Close()
	}
}
