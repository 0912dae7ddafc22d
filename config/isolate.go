package config

import (
	"gopkg.in/yaml.v3"

	"github.com/agentvault/agentvault/launcher/isolate"
)

// Isolate is the isolate section: `isolate: true`, or a mapping whose
// enabled key defaults to true.
type Isolate struct {
	Enabled bool
	Hide    []string // extra paths to hide, as written (~/ or absolute)
	Show    []string // entries of isolate.DefaultHidden not to hide
}

func (p *parser) isolate(n *yaml.Node) error {
	if d := deref(n); d.Kind == yaml.ScalarNode {
		if d.ShortTag() != "!!bool" {
			return nodeError(p.file, n, "isolate: expected true, false or a mapping, got %s", kindName(n))
		}
		return d.Decode(&p.cfg.Isolate.Enabled)
	}
	pairs, err := mappingPairs(p.file, n, "isolate")
	if err != nil {
		return err
	}
	iso := &p.cfg.Isolate
	iso.Enabled = true
	for _, kv := range pairs {
		what := "isolate." + kv.key.Value
		switch kv.key.Value {
		case "enabled":
			d := deref(kv.val)
			if d.Kind != yaml.ScalarNode || d.ShortTag() != "!!bool" {
				return nodeError(p.file, kv.val, "%s: expected true or false, got %s", what, kindName(kv.val))
			}
			var b bool
			if err := d.Decode(&b); err != nil {
				return nodeError(p.file, kv.val, "%s: %v", what, err)
			}
			iso.Enabled = b
		case "hide", "show":
			if isNull(kv.val) {
				continue
			}
			list, nodes, err := strList(p.file, kv.val, what)
			if err != nil {
				return err
			}
			for i, s := range list {
				if kv.key.Value == "show" && isolate.IsDefault(s) {
					continue // some defaults are written "$NAME/..."
				}
				if err := isolate.ValidPath(s); err != nil {
					return nodeError(p.file, nodes[i], "%s: %v", what, err)
				}
				if kv.key.Value == "show" {
					return nodeError(p.file, nodes[i], "%s: %q is not hidden by default (defaults: %s)", what, s, joinComma(isolate.DefaultHidden))
				}
			}
			if kv.key.Value == "hide" {
				iso.Hide = list
			} else {
				iso.Show = list
			}
		default:
			return unknownKey(p.file, kv.key, "isolate", []string{"enabled", "hide", "show"})
		}
	}
	return nil
}
