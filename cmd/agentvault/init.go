package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/agentvault/agentvault/config"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "write a commented starter agentvault.yaml",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "preset", Usage: "add a credential for this preset (repeatable; see agentvault presets)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "agentvault.yaml", Usage: "file to write"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing file"},
		},
		Action: func(c *cli.Context) error {
			data, err := config.Starter(c.StringSlice("preset"))
			if err != nil {
				return fail(exitUsage, "init: %v", err)
			}
			path := c.String("output")
			// --force overwrites a file, never what a symlink planted at
			// its name points to.
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if c.Bool("force") {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC | noFollow
			}
			f, err := os.OpenFile(path, flags, 0o644)
			if errors.Is(err, fs.ErrExist) {
				return fail(exitFailure, "init: %s already exists (use --force to overwrite)", path)
			}
			if errors.Is(err, syscall.ELOOP) {
				return fail(exitFailure, "init: %s is a symbolic link; refusing to write through it", path)
			}
			if err != nil {
				return fail(exitFailure, "init: %v", err)
			}
			if _, err := f.Write(data); err != nil {
				f.Close()
				return fail(exitFailure, "init: %v", err)
			}
			if err := f.Close(); err != nil {
				return fail(exitFailure, "init: %v", err)
			}
			// What init wrote is what the user asked for: trust exactly
			// those bytes, so a later change to the file still needs review.
			e, err := config.TrustContent(trustOptions(), path, data)
			if err != nil {
				return fail(exitConfig, "init: wrote %s but could not trust it: %v", path, err)
			}
			fmt.Fprintf(c.App.Writer, "wrote %s and trusted it (sha256 %s); check it with: agentvault check -c %s\n", path, e.Short(), path)
			return nil
		},
	}
}
