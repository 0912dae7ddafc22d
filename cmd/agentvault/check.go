package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/agentvault/agentvault/backends"
	"github.com/agentvault/agentvault/config"
	"github.com/agentvault/agentvault/session"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "validate the config and resolve every credential (values are never printed)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "config file"},
		},
		Action: func(c *cli.Context) error {
			cwd, _ := os.Getwd()
			home, _ := os.UserHomeDir()
			cfg, err := config.Load(config.LoadOptions{Path: c.String("config"), LookupEnv: os.LookupEnv, Cwd: cwd, Home: home})
			if err != nil {
				return configFailure(err)
			}
			results, err := session.Check(c.Context, cfg, backends.Open, os.LookupEnv)
			if err != nil {
				return configFailure(err)
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			source := cfg.File
			if cfg.ZeroConfig {
				source = "zero-config (presets whose variables are set)"
			}
			fmt.Fprintf(c.App.Writer, "config: %s\n", source)
			fmt.Fprintln(w, "CREDENTIAL\tBACKEND\tHOSTS\tSTATUS")
			failed := 0
			for _, r := range results {
				status := "ok"
				if r.Leased && r.TTL > 0 {
					status = fmt.Sprintf("ok (lease ttl %s)", r.TTL)
				}
				if r.Err != nil {
					failed++
					status = "error: " + oneLine(r.Err.Error())
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Name, r.Backend, strings.Join(r.Hosts, ","), status)
			}
			w.Flush()
			if len(results) == 0 {
				fmt.Fprintln(c.App.Writer, "no credentials configured")
			}
			fmt.Fprintf(c.App.Writer, "isolation (--isolate): %s\n", isolationStatus())
			if o := cfg.Audit.OTLP; o != nil {
				// run refuses to start without the header variables; say
				// so here first. Neither the endpoint (an ingest key may sit
				// in its query) nor a header value is printed.
				if _, _, err := o.HeaderValues(os.LookupEnv); err != nil {
					fmt.Fprintf(c.App.Writer, "audit export (audit.otlp): error: %s\n", oneLine(err.Error()))
					return fail(exitConfig, "audit.otlp cannot be used: %v", err)
				}
				if o.HeadersInClear() {
					// Whether run gets --isolate is not known here.
					fmt.Fprintln(c.App.Writer, "audit export (audit.otlp): headers go to an http:// endpoint: run refuses that without --isolate (use https://)")
				} else {
					fmt.Fprintln(c.App.Writer, "audit export (audit.otlp): ok (headers complete; the collector is not contacted)")
				}
			}
			if failed > 0 {
				return fail(exitUnavailable, "%d of %d credentials could not be resolved", failed, len(results))
			}
			return nil
		},
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
