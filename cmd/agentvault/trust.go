package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/agentvault/agentvault/config"
	"github.com/agentvault/agentvault/launcher"
)

func trustCommand() *cli.Command {
	return &cli.Command{
		Name:      "trust",
		Usage:     "mark the exact content of a project config (default ./agentvault.yaml) as reviewed",
		ArgsUsage: "[FILE]",
		Description: "A config found in the working directory is used by run and check only after\n" +
			"you trusted its current content. Review the file, then trust it; any later change\n" +
			"needs a new trust. Configs named with -c, $AGENTVAULT_CONFIG or in\n" +
			"~/.config/agentvault/ are your own choice and need no trust.",
		Action: func(c *cli.Context) error {
			// Trust is the user's review. An agent told (by a prompt
			// injection, say) to approve its own config is stopped here;
			// one that edits the record directly is the host-mode limit
			// the README names.
			if launcher.Nested(os.Environ()) {
				return fail(exitUsage, "refusing to trust a config from inside an agentvault session (AGENTVAULT_SESSION is set): review it and run agentvault trust from your own shell")
			}
			if c.NArg() > 1 {
				return fail(exitUsage, "trust takes one file (see agentvault trust --help)")
			}
			file := "agentvault.yaml"
			if c.NArg() == 1 {
				file = c.Args().First()
			}
			e, err := config.TrustFile(trustOptions(), file)
			if err != nil {
				var ce *config.ConfigError
				if errors.As(err, &ce) {
					return fail(exitConfig, "%v (nothing trusted)", err)
				}
				return fail(exitConfig, "trust: %v", err)
			}
			fmt.Fprintf(c.App.Writer, "trusted %s (sha256 %s)\n", e.Path, e.Short())
			return nil
		},
	}
}

// trustOptions locates the user's trust record the way run and check do.
func trustOptions() config.LoadOptions {
	home, _ := os.UserHomeDir()
	return config.LoadOptions{LookupEnv: os.LookupEnv, Home: home}
}
