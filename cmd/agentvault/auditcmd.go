package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/agentvault/agentvault/audit"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "render the summary of a saved audit log",
		ArgsUsage: "FILE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: string(audit.FormatTable), Usage: "table, markdown or json"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fail(exitUsage, "audit needs exactly one FILE")
			}
			format, err := audit.ParseAuditFormat(c.String("format"))
			if err != nil {
				return fail(exitUsage, "--format: %v", err)
			}
			f, err := os.Open(c.Args().First())
			if err != nil {
				return fail(exitNoInput, "audit: %v", err)
			}
			defer f.Close()
			entries, err := audit.ReadLog(f)
			if err != nil {
				return fail(exitDataErr, "audit: %v", err)
			}
			return audit.RenderAudit(c.App.Writer, entries, format, nil)
		},
	}
}
