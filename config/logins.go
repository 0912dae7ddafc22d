package config

import (
	"gopkg.in/yaml.v3"

	"github.com/agentvault/agentvault/broker"
)

// logins parses `logins: [claude, codex]`: the agent CLIs whose
// subscription login (OAuth tokens in the CLI's own store) the session
// brokers (docs/subscription-logins.md).
func (p *parser) logins(n *yaml.Node) error {
	list, nodes, err := strList(p.file, n, "logins")
	if err != nil {
		return err
	}
	var names []string
	for _, f := range broker.Formats {
		names = append(names, f.Name)
	}
	for i, s := range list {
		if _, ok := broker.Lookup(s); !ok {
			return nodeError(p.file, nodes[i], "logins: unknown agent %q (known: %s)", s, joinComma(names))
		}
		if contains(p.cfg.Logins, s) {
			return nodeError(p.file, nodes[i], "logins: %q given twice", s)
		}
		p.cfg.Logins = append(p.cfg.Logins, s)
	}
	return nil
}
