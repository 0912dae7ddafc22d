package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agentvault/agentvault/backends"
	"github.com/agentvault/agentvault/vocab"
	"golang.org/x/net/http/httpguts"
)

var credentialKeys = []string{"name", "secret", "preset", "hosts", "inject", "env", "ttl", "methods", "paths", "placeholder"}

// credState keeps what validation across credentials needs: where each name,
// env variable and fixed placeholder was first used.
type credState struct {
	names        map[string]int
	env          map[string]string
	placeholders map[string]string
}

func (p *parser) credentials(n *yaml.Node) error {
	d := deref(n)
	if d.Kind != yaml.SequenceNode {
		return nodeError(p.file, n, "credentials: expected a list, got %s", kindName(n))
	}
	st := &credState{names: map[string]int{}, env: map[string]string{}, placeholders: map[string]string{}}
	for _, item := range d.Content {
		c, err := p.credential(item, st)
		if err != nil {
			return err
		}
		p.cfg.Credentials = append(p.cfg.Credentials, c)
	}
	return nil
}

// credNodes remembers the nodes of one credential's keys for later messages.
type credNodes struct {
	name, secret, hosts, env, placeholder *yaml.Node
	hostElems, envElems                   []*yaml.Node
	ruleHosts                             [][]*yaml.Node
}

func (p *parser) credential(item *yaml.Node, st *credState) (Credential, error) {
	c := Credential{Line: deref(item).Line}
	pairs, err := mappingPairs(p.file, item, "credential")
	if err != nil {
		return c, err
	}
	// The name comes first so every later message can say which credential.
	for _, kv := range pairs {
		if kv.key.Value == "name" {
			if c.Name, err = str(p.file, kv.val, "credential name"); err != nil {
				return c, err
			}
		}
	}
	what := "credential " + quote(c.Name)
	if c.Name == "" {
		what = fmt.Sprintf("credential at line %d", c.Line)
	}
	var nodes credNodes
	set := map[string]bool{}
	for _, kv := range pairs {
		key, val := kv.key.Value, kv.val
		set[key] = true
		field := what + ": " + key
		switch key {
		case "name":
			nodes.name = val
		case "secret":
			nodes.secret = val
			s, err := str(p.file, val, field)
			if err != nil {
				return c, err
			}
			if c.Secret, err = ParseRef(s); err != nil {
				return c, nodeError(p.file, val, "%s: %v", what, err)
			}
		case "preset":
			s, err := str(p.file, val, field)
			if err != nil {
				return c, err
			}
			pr, ok := LookupPreset(s)
			if !ok {
				return c, nodeError(p.file, val, "%s: unknown preset %q (known: %s)", what, s, joinComma(PresetNames()))
			}
			c.Preset = pr.Name
		case "hosts":
			nodes.hosts = val
			if c.Hosts, nodes.hostElems, err = p.hostList(val, field); err != nil {
				return c, err
			}
		case "inject":
			if c.Inject, nodes.ruleHosts, err = p.injectRules(val, field); err != nil {
				return c, err
			}
		case "env":
			nodes.env = val
			if c.Env, nodes.envElems, err = strList(p.file, val, field); err != nil {
				return c, err
			}
			for i, e := range c.Env {
				if !backends.ValidEnvName(e) {
					return c, nodeError(p.file, nodes.envElems[i], "%s: %q is not an environment variable name", field, e)
				}
			}
		case "ttl":
			if c.TTL, err = duration(p.file, val, field); err != nil {
				return c, err
			}
		case "methods":
			list, elems, err := strList(p.file, val, field)
			if err != nil {
				return c, err
			}
			for i, m := range list {
				m = strings.ToUpper(m)
				if !httpguts.ValidHeaderFieldName(m) {
					return c, nodeError(p.file, elems[i], "%s: %q is not an HTTP method", field, list[i])
				}
				list[i] = m
			}
			c.Methods = list
		case "paths":
			list, elems, err := strList(p.file, val, field)
			if err != nil {
				return c, err
			}
			for i, g := range list {
				if g == "" || g[0] != '/' && g[0] != '*' {
					return c, nodeError(p.file, elems[i], "%s: %q must start with / or *", field, g)
				}
			}
			c.Paths = list
		case "placeholder":
			nodes.placeholder = val
			if c.Placeholder, err = str(p.file, val, field); err != nil {
				return c, err
			}
			if err := ValidPlaceholder(c.Placeholder); err != nil {
				return c, nodeError(p.file, val, "%s: %v", field, err)
			}
		default:
			return c, unknownKey(p.file, kv.key, what, credentialKeys)
		}
	}
	if err := p.checkCredential(&c, what, item, &nodes, set, st); err != nil {
		return c, err
	}
	return c, nil
}

// checkCredential applies the preset and defaults and checks what spans keys.
func (p *parser) checkCredential(c *Credential, what string, item *yaml.Node, nodes *credNodes, set map[string]bool, st *credState) error {
	at := func(n *yaml.Node) *yaml.Node {
		if n != nil {
			return n
		}
		return item
	}
	switch {
	case c.Name == "":
		return nodeError(p.file, at(nodes.name), "%s: name is required", what)
	case !validName(c.Name):
		return nodeError(p.file, nodes.name, "%s: invalid name (letters, digits, '-', '_', '.'; at most 64)", what)
	}
	if first, dup := st.names[c.Name]; dup {
		return nodeError(p.file, nodes.name, "duplicate credential name %q (first defined at line %d)", c.Name, first)
	}
	st.names[c.Name] = c.Line
	if c.Secret.Backend == "" {
		return nodeError(p.file, at(nodes.secret), "%s: secret is required (e.g. secret: env:VAR)", what)
	}
	if _, ok := p.cfg.LookupBackend(c.Secret.Backend); !ok {
		if c.Secret.Backend == "exec" {
			return nodeError(p.file, nodes.secret, "%s: backend \"exec\" is not declared: an exec backend needs an entry under backends: with its command", what)
		}
		return nodeError(p.file, nodes.secret, "%s: backend %q is not declared under backends: and is not a backend type (%s, aws)", what, c.Secret.Backend, joinComma(BackendTypes))
	}

	if c.Preset != "" {
		pr, _ := LookupPreset(c.Preset)
		if !set["hosts"] {
			c.Hosts = append([]string(nil), pr.Hosts...)
		}
		if !set["env"] {
			c.Env = append([]string(nil), pr.Env...)
		}
		if !set["inject"] {
			c.Inject = presetRulesFor(pr.Inject, c.Hosts)
			nodes.ruleHosts = nil
		}
	}
	if len(c.Hosts) == 0 && !set["hosts"] && c.HasInject(vocab.InjectAWSSigV4) {
		c.Hosts = []string{"*.amazonaws.com"}
	}
	if len(c.Hosts) == 0 {
		return nodeError(p.file, at(nodes.hosts), "%s: no hosts (set hosts: or a preset:)", what)
	}
	for i, h := range c.Hosts {
		if err := notTooBroad(h); err != nil {
			return nodeError(p.file, elemOr(nodes.hostElems, i, item), "%s: %v", what, err)
		}
	}
	for ri, r := range c.Inject {
		for hi, h := range r.Hosts {
			if !coveredBy(c.Hosts, h) {
				n := item
				if ri < len(nodes.ruleHosts) {
					n = elemOr(nodes.ruleHosts[ri], hi, item)
				}
				return nodeError(p.file, n, "%s: inject host %q is not one of the credential's hosts", what, h)
			}
		}
	}
	if err := authConflict(c.Inject); err != nil {
		return nodeError(p.file, item, "%s: %v", what, err)
	}
	for i, e := range c.Env {
		if other, dup := st.env[e]; dup {
			return nodeError(p.file, elemOr(nodes.envElems, i, at(nodes.env)), "%s: env %s is already given to credential %q", what, e, other)
		}
		st.env[e] = c.Name
	}
	if c.Placeholder != "" {
		if other, dup := st.placeholders[c.Placeholder]; dup {
			return nodeError(p.file, nodes.placeholder, "%s: placeholder is the same as credential %q's", what, other)
		}
		st.placeholders[c.Placeholder] = c.Name
	}
	return nil
}

// presetRulesFor adapts a preset's rules to a credential that narrowed the
// hosts: a rule keeps only the hosts still covered, and a rule limited to
// hosts that are all gone is dropped rather than reported as an error the
// user never wrote.
func presetRulesFor(rules []InjectRule, hosts []string) []InjectRule {
	var out []InjectRule
	for _, r := range cloneRules(rules) {
		if len(r.Hosts) > 0 {
			var kept []string
			for _, h := range r.Hosts {
				if coveredBy(hosts, h) {
					kept = append(kept, h)
				}
			}
			if len(kept) == 0 {
				continue
			}
			r.Hosts = kept
		}
		out = append(out, r)
	}
	return out
}

func elemOr(list []*yaml.Node, i int, def *yaml.Node) *yaml.Node {
	if i < len(list) {
		return list[i]
	}
	return def
}

func (p *parser) hostList(n *yaml.Node, what string) ([]string, []*yaml.Node, error) {
	list, elems, err := strList(p.file, n, what)
	if err != nil {
		return nil, nil, err
	}
	for i, h := range list {
		norm, err := NormalizeHostPattern(h)
		if err != nil {
			return nil, nil, nodeError(p.file, elems[i], "%s: %v", what, err)
		}
		list[i] = norm
	}
	return list, elems, nil
}

// notTooBroad refuses "*.com"-style patterns: a secret bound to a whole
// top-level domain would go to hosts nobody meant.
func notTooBroad(h string) error {
	name, _ := patternPort(h)
	if strings.HasPrefix(name, "*.") && !strings.Contains(name[2:], ".") {
		return fmt.Errorf("host pattern %q is too broad for a credential", h)
	}
	return nil
}

func coveredBy(hosts []string, h string) bool {
	for _, c := range hosts {
		if patternCovers(c, h) {
			return true
		}
	}
	return false
}

func duration(file string, n *yaml.Node, what string) (time.Duration, error) {
	d := deref(n)
	if d == nil || d.Kind != yaml.ScalarNode || d.ShortTag() != "!!str" {
		return 0, nodeError(file, n, "%s: expected a duration such as 90s or 10m, got %s", what, kindName(n))
	}
	v, err := time.ParseDuration(d.Value)
	if err != nil {
		return 0, nodeError(file, n, "%s: %q is not a duration (Go syntax: 90s, 10m, 1h30m)", what, d.Value)
	}
	if v <= 0 {
		return 0, nodeError(file, n, "%s: must be positive", what)
	}
	return v, nil
}
