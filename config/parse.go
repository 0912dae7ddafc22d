package config

import (
	"errors"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentvault/agentvault/backends"
	"github.com/agentvault/agentvault/vocab"
)

var topKeys = []string{"version", "backends", "credentials", "egress", "guard", "audit", "isolate", "logins"}

// Parse reads and validates agentvault.yaml. file is used in error messages
// and Config.File. Every problem is a *ConfigError with a position.
func Parse(file string, data []byte) (*Config, error) {
	docs, err := decodeDocuments(data)
	if err != nil {
		return nil, syntaxError(file, data, err)
	}
	cfg := defaultConfig()
	cfg.File = file
	if len(docs) > 1 {
		return nil, nodeError(file, docs[1], "only one YAML document is allowed")
	}
	if len(docs) == 0 {
		return cfg, nil
	}
	root := docs[0]
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return cfg, nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return cfg, nil
	}
	p := &parser{file: file, cfg: cfg}
	if err := p.root(root); err != nil {
		return nil, err
	}
	return cfg, nil
}

type parser struct {
	file string
	cfg  *Config
}

func (p *parser) root(n *yaml.Node) error {
	pairs, err := mappingPairs(p.file, n, "config")
	if err != nil {
		return err
	}
	sections := map[string]*yaml.Node{}
	for _, kv := range pairs {
		if !contains(topKeys, kv.key.Value) {
			return unknownKey(p.file, kv.key, "config", topKeys)
		}
		sections[kv.key.Value] = kv.val
	}
	// Fixed order: credentials refer to backends whatever order the file uses.
	steps := []struct {
		key string
		fn  func(*yaml.Node) error
	}{
		{"version", p.version},
		{"backends", p.backends},
		{"credentials", p.credentials},
		{"egress", p.egress},
		{"guard", p.guard},
		{"audit", p.audit},
		{"isolate", p.isolate},
		{"logins", p.logins}, // logins.go
	}
	for _, s := range steps {
		if v, ok := sections[s.key]; ok && !isNull(v) {
			if err := s.fn(v); err != nil {
				return err
			}
		}
	}
	return p.checkBackendOptions()
}

// checkOptions is backends.CheckOptions; the tests of the generic decoder
// (decode_test.go) swap it for one that accepts their own option types.
var checkOptions = backends.CheckOptions

// checkBackendOptions decodes every declared backend's options into the
// backend's own types now, in file order, so a typo is a configuration
// error when the file loads, not a resolution error (exit 69) when a
// credential first uses the backend, and never missed for an unused one.
func (p *parser) checkBackendOptions() error {
	list := make([]BackendConfig, 0, len(p.cfg.Backends))
	for _, b := range p.cfg.Backends {
		if b.Line > 0 {
			list = append(list, b)
		}
	}
	slices.SortFunc(list, func(a, b BackendConfig) int { return a.Line - b.Line })
	for _, b := range list {
		err := checkOptions(backends.Options{Name: b.Name, Type: b.Type, Decode: b.Decode})
		var ce *ConfigError
		switch {
		case err == nil:
		case errors.As(err, &ce):
			return err
		default:
			return &ConfigError{File: p.file, Line: b.Line, Msg: err.Error()}
		}
	}
	return nil
}

func (p *parser) version(n *yaml.Node) error {
	d := deref(n)
	if d.Kind != yaml.ScalarNode || d.ShortTag() != "!!int" {
		return nodeError(p.file, n, "version: expected a number, got %s", kindName(n))
	}
	if d.Value != "1" {
		return nodeError(p.file, n, "version: unsupported version %s (this agentvault reads version 1)", d.Value)
	}
	return nil
}

func (p *parser) backends(n *yaml.Node) error {
	pairs, err := mappingPairs(p.file, n, "backends")
	if err != nil {
		return err
	}
	for _, kv := range pairs {
		name := kv.key.Value
		if !validName(name) {
			return nodeError(p.file, kv.key, "backends: invalid backend name %q (letters, digits, '-', '_', '.')", name)
		}
		b := BackendConfig{Name: name, Line: kv.key.Line, file: p.file}
		what := "backend " + quote(name)
		var typeNode *yaml.Node
		var rest []*yaml.Node
		if !isNull(kv.val) {
			fields, err := mappingPairs(p.file, kv.val, what)
			if err != nil {
				return err
			}
			for _, f := range fields {
				if f.key.Value == "type" {
					typeNode = f.val
					continue
				}
				rest = append(rest, f.key, f.val)
			}
		}
		if typeNode != nil {
			t, err := str(p.file, typeNode, what+": type")
			if err != nil {
				return err
			}
			ct, ok := canonicalType(t)
			if !ok {
				return nodeError(p.file, typeNode, "%s: unknown backend type %q (known: %s)", what, t, joinComma(BackendTypes))
			}
			b.Type = ct
		} else {
			ct, ok := canonicalType(name)
			if !ok {
				return nodeError(p.file, kv.key, "%s: unknown backend type %q (the type defaults to the name; set type: to one of %s)", what, name, joinComma(BackendTypes))
			}
			b.Type = ct
		}
		if len(rest) > 0 {
			// A flattened copy: merges are already expanded and "type" is
			// gone, while the children keep their original lines.
			b.node = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: deref(kv.val).Line, Column: deref(kv.val).Column, Content: rest}
		}
		p.cfg.Backends[name] = b
	}
	return nil
}

func (p *parser) egress(n *yaml.Node) error {
	pairs, err := mappingPairs(p.file, n, "egress")
	if err != nil {
		return err
	}
	e := &p.cfg.Egress
	for _, kv := range pairs {
		what := "egress." + kv.key.Value
		switch kv.key.Value {
		case "default":
			e.Default, err = oneOf(p.file, kv.val, what, EgressAllow, EgressDeny)
		case "inspect":
			e.Inspect, err = oneOf(p.file, kv.val, what, InspectCredentialed, InspectAll)
		case "allow":
			e.Allow, err = p.egressList(kv.val, what)
		case "deny":
			e.Deny, err = p.egressList(kv.val, what)
		case "no_proxy":
			e.NoProxy, err = p.noProxyList(kv.val, what)
		default:
			return unknownKey(p.file, kv.key, "egress", []string{"default", "allow", "deny", "no_proxy", "inspect"})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) egressList(n *yaml.Node, what string) ([]string, error) {
	if isNull(n) {
		return nil, nil
	}
	list, nodes, err := strList(p.file, n, what)
	if err != nil {
		return nil, err
	}
	for i, s := range list {
		norm, err := normalizeEgressPattern(s)
		if err != nil {
			return nil, nodeError(p.file, nodes[i], "%s: %v", what, err)
		}
		list[i] = norm
	}
	return list, nil
}

// noProxyList keeps NO_PROXY syntax (".domain", "*", CIDRs) as written; it
// only refuses what would corrupt the comma-separated variable.
func (p *parser) noProxyList(n *yaml.Node, what string) ([]string, error) {
	if isNull(n) {
		return nil, nil
	}
	list, nodes, err := strList(p.file, n, what)
	if err != nil {
		return nil, err
	}
	for i, s := range list {
		if s == "" || strings.ContainsAny(s, ", \t\r\n") {
			return nil, nodeError(p.file, nodes[i], "%s: %q is not a single NO_PROXY entry", what, s)
		}
	}
	return list, nil
}

func (p *parser) guard(n *yaml.Node) error {
	pairs, err := mappingPairs(p.file, n, "guard")
	if err != nil {
		return err
	}
	for _, kv := range pairs {
		what := "guard." + kv.key.Value
		switch kv.key.Value {
		case "leak":
			p.cfg.Guard.Leak, err = oneOf(p.file, kv.val, what, vocab.LeakModes...)
		case "reflection":
			p.cfg.Guard.Reflection, err = oneOf(p.file, kv.val, what, vocab.ReflectionModes...)
		default:
			return unknownKey(p.file, kv.key, "guard", []string{"leak", "reflection"})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) audit(n *yaml.Node) error {
	pairs, err := mappingPairs(p.file, n, "audit")
	if err != nil {
		return err
	}
	for _, kv := range pairs {
		switch kv.key.Value {
		case "log":
			if isNull(kv.val) {
				continue
			}
			if p.cfg.Audit.Log, err = str(p.file, kv.val, "audit.log"); err != nil {
				return err
			}
		case "otlp":
			if isNull(kv.val) {
				continue
			}
			if p.cfg.Audit.OTLP, err = p.otlp(kv.val); err != nil {
				return err
			}
		default:
			return unknownKey(p.file, kv.key, "audit", []string{"log", "otlp"})
		}
	}
	return nil
}
