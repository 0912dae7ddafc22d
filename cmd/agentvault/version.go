package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print version, commit and build date",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "agentvault %s (commit %s, built %s)\n", version, commit, date)
			return nil
		},
	}
}
