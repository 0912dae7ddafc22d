package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/agentvault/agentvault/config"
	"github.com/agentvault/agentvault/vocab"
)

func presetsCommand() *cli.Command {
	return &cli.Command{
		Name:  "presets",
		Usage: "list the built-in service presets",
		Action: func(c *cli.Context) error {
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PRESET\tHOSTS\tENV\tINJECTION")
			for _, p := range config.Presets() {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, strings.Join(p.Hosts, ","), strings.Join(p.Env, ","), describeInject(p.Inject))
			}
			return w.Flush()
		},
	}
}

func describeInject(rules []config.InjectRule) string {
	if len(rules) == 0 {
		return string(vocab.InjectPlaceholder)
	}
	parts := make([]string, 0, len(rules))
	for _, r := range rules {
		s := string(r.Type)
		switch r.Type {
		case vocab.InjectBasic:
			s += "(" + r.Username + ")"
		case vocab.InjectHeader, vocab.InjectQuery:
			s += "(" + r.Name + ")"
		}
		if len(r.Hosts) > 0 {
			s += " on " + strings.Join(r.Hosts, ",")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
