package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentvault/agentvault/vocab"
	"golang.org/x/net/http/httpguts"
)

var ruleKeys = []string{"type", "username", "name", "format", "hosts"}

// injectRules reads `inject:` as a type name, one rule mapping, or a list of
// either. It also returns each rule's host nodes for later messages.
func (p *parser) injectRules(n *yaml.Node, what string) ([]InjectRule, [][]*yaml.Node, error) {
	d := deref(n)
	items := []*yaml.Node{n}
	if d.Kind == yaml.SequenceNode {
		items = d.Content
	}
	var rules []InjectRule
	var hostNodes [][]*yaml.Node
	for _, it := range items {
		r, hn, err := p.injectRule(it, what)
		if err != nil {
			return nil, nil, err
		}
		rules = append(rules, r)
		hostNodes = append(hostNodes, hn)
	}
	return rules, hostNodes, nil
}

func (p *parser) injectRule(n *yaml.Node, what string) (InjectRule, []*yaml.Node, error) {
	var r InjectRule
	d := deref(n)
	if d.Kind == yaml.ScalarNode {
		t, err := str(p.file, n, what)
		if err != nil {
			return r, nil, err
		}
		r.Type = vocab.InjectType(t)
		if err := p.finishRule(&r, what, nil, map[string]*yaml.Node{"type": n}); err != nil {
			return r, nil, err
		}
		return r, nil, nil
	}
	if d.Kind != yaml.MappingNode {
		return r, nil, nodeError(p.file, n, "%s: expected a type name, a rule mapping or a list of rules, got %s", what, kindName(n))
	}
	pairs, err := mappingPairs(p.file, n, what)
	if err != nil {
		return r, nil, err
	}
	var hostNodes []*yaml.Node
	keyNodes := map[string]*yaml.Node{}
	valNodes := map[string]*yaml.Node{}
	for _, kv := range pairs {
		keyNodes[kv.key.Value] = kv.key
		valNodes[kv.key.Value] = kv.val
		field := what + "." + kv.key.Value
		switch kv.key.Value {
		case "type":
			var t string
			t, err = str(p.file, kv.val, field)
			r.Type = vocab.InjectType(t)
		case "username":
			r.Username, err = str(p.file, kv.val, field)
		case "name":
			r.Name, err = str(p.file, kv.val, field)
		case "format":
			r.Format, err = str(p.file, kv.val, field)
		case "hosts":
			r.Hosts, hostNodes, err = p.hostList(kv.val, field)
		default:
			return r, nil, unknownKey(p.file, kv.key, what, ruleKeys)
		}
		if err != nil {
			return r, nil, err
		}
	}
	if r.Type == "" {
		return r, nil, nodeError(p.file, n, "%s: a rule needs a type (%s)", what, joinComma(vocab.InjectTypes))
	}
	if err := p.finishRule(&r, what, keyNodes, valNodes); err != nil {
		return r, nil, err
	}
	return r, hostNodes, nil
}

// finishRule checks which keys fit the type and applies defaults. The maps
// hold the rule's key and value nodes by key; only "type" is set for the
// short form ("inject: bearer").
func (p *parser) finishRule(r *InjectRule, what string, keyNodes, valNodes map[string]*yaml.Node) error {
	typeNode := valNodes["type"]
	if !contains(vocab.InjectTypes, r.Type) {
		return nodeError(p.file, typeNode, "%s: unknown inject type %q (known: %s)", what, r.Type, joinComma(vocab.InjectTypes))
	}
	allowed := map[vocab.InjectType][]string{
		vocab.InjectBasic:  {"username"},
		vocab.InjectHeader: {"name", "format"},
		vocab.InjectQuery:  {"name"},
	}[r.Type]
	for _, k := range []string{"username", "name", "format"} {
		if kn, ok := keyNodes[k]; ok && !contains(allowed, k) {
			return nodeError(p.file, kn, "%s: %s does not apply to type %s", what, k, r.Type)
		}
	}
	switch r.Type {
	case vocab.InjectBasic:
		if r.Username == "" {
			r.Username = vocab.DefaultBasicUsername
		}
		if strings.Contains(r.Username, ":") {
			return nodeError(p.file, valNodes["username"], "%s: a basic username cannot contain ':'", what)
		}
	case vocab.InjectHeader, vocab.InjectQuery:
		if r.Name == "" {
			return nodeError(p.file, typeNode, "%s: type %s needs a name, e.g. {type: %s, name: %s}", what, r.Type, r.Type, map[vocab.InjectType]string{vocab.InjectHeader: "X-Api-Key", vocab.InjectQuery: "key"}[r.Type])
		}
		if r.Type == vocab.InjectHeader {
			if !httpguts.ValidHeaderFieldName(r.Name) {
				return nodeError(p.file, valNodes["name"], "%s: %q is not a header name", what, r.Name)
			}
			if vocab.OwnedHeader(r.Name) {
				return nodeError(p.file, valNodes["name"], "%s: header %s is managed by the proxy", what, r.Name)
			}
			if r.Format == "" {
				r.Format = vocab.SecretToken
			}
			if !strings.Contains(r.Format, vocab.SecretToken) {
				return nodeError(p.file, valNodes["format"], "%s: format must contain %s", what, vocab.SecretToken)
			}
			if strings.ContainsAny(r.Format, "\r\n") {
				return nodeError(p.file, valNodes["format"], "%s: format cannot contain a line break", what)
			}
		}
	}
	return nil
}

// authConflict refuses two rules that would set the same header (or query
// parameter) on the same host pattern: which one wins would be arbitrary.
// Overlap between different wildcard patterns is left to the proxy's order.
func authConflict(rules []InjectRule) error {
	for i, r := range rules {
		target := ruleTarget(r)
		if target == "" {
			continue
		}
		for _, prev := range rules[:i] {
			if ruleTarget(prev) == target && hostsOverlap(prev.Hosts, r.Hosts) {
				return fmt.Errorf("inject rules %s and %s both set %s on the same hosts (use hosts: to split them)", prev.Type, r.Type, target)
			}
		}
	}
	return nil
}

// hostsOverlap treats an empty list as "all of the credential's hosts".
func hostsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, h := range a {
		if contains(b, h) {
			return true
		}
	}
	return false
}

// ruleTarget names what a rule sets, "" for placeholder rules.
func ruleTarget(r InjectRule) string {
	switch r.Type {
	case vocab.InjectBearer, vocab.InjectBasic, vocab.InjectAWSSigV4:
		return "the Authorization header"
	case vocab.InjectHeader:
		if strings.EqualFold(r.Name, "authorization") {
			return "the Authorization header"
		}
		return "header " + strings.ToLower(r.Name)
	case vocab.InjectQuery:
		return "query parameter " + r.Name
	}
	return ""
}

func cloneRules(rules []InjectRule) []InjectRule {
	if rules == nil {
		return nil
	}
	out := make([]InjectRule, len(rules))
	for i, r := range rules {
		r.Hosts = append([]string(nil), r.Hosts...)
		if len(r.Hosts) == 0 {
			r.Hosts = nil
		}
		out[i] = r
	}
	return out
}
