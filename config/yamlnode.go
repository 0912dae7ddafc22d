package config

import (
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Helpers that read a yaml.Node tree strictly, so every problem carries the
// line and column of the node at fault.

type pair struct{ key, val *yaml.Node }

// maxAliasDepth bounds alias chains and merge nesting (a hostile file could
// otherwise make them deep).
const maxAliasDepth = 32

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "a string"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "nothing"
		}
		return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
	}
	return "something else"
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// mappingPairs returns a mapping's pairs with "<<" merges expanded (explicit
// keys win over merged ones, earlier merges over later ones) and rejects
// duplicate and non-scalar keys.
func mappingPairs(file string, n *yaml.Node, what string) ([]pair, error) {
	return mappingPairsDepth(file, n, what, 0)
}

func mappingPairsDepth(file string, n *yaml.Node, what string, depth int) ([]pair, error) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nodeError(file, n, "%s: expected a mapping, got %s", what, kindName(n))
	}
	if depth > maxAliasDepth {
		return nil, nodeError(file, n, "%s: merges nested too deeply", what)
	}
	var out, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, nodeError(file, k, "%s: keys must be plain names, got %s", what, kindName(k))
		}
		if k.ShortTag() == "!!merge" {
			m, err := mergeSources(file, v, what, depth)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			return nil, nodeError(file, n.Content[i], "%s: duplicate key %q (first at line %d)", what, k.Value, first.Line)
		}
		seen[k.Value] = n.Content[i]
		out = append(out, pair{n.Content[i], v})
	}
	for _, m := range merged {
		if _, ok := seen[m.key.Value]; !ok {
			seen[m.key.Value] = m.key
			out = append(out, m)
		}
	}
	return out, nil
}

func mergeSources(file string, v *yaml.Node, what string, depth int) ([]pair, error) {
	v = deref(v)
	if v.Kind == yaml.SequenceNode {
		var out []pair
		for _, item := range v.Content {
			m, err := mappingPairsDepth(file, item, what+" (merge)", depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, m...)
		}
		return out, nil
	}
	return mappingPairsDepth(file, v, what+" (merge)", depth+1)
}

// unknownKey names the key and lists the ones that would have been accepted.
func unknownKey(file string, k *yaml.Node, what string, known []string) *ConfigError {
	ks := append([]string(nil), known...)
	sort.Strings(ks)
	return nodeError(file, k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(ks, ", "))
}

// str reads a scalar as text. Numbers are accepted as written ("name: 2024");
// booleans and null are type errors, since they are never a valid value here.
func str(file string, n *yaml.Node, what string) (string, error) {
	d := deref(n)
	if d == nil || d.Kind != yaml.ScalarNode {
		return "", nodeError(file, n, "%s: expected a string, got %s", what, kindName(n))
	}
	switch d.ShortTag() {
	case "!!str", "!!int", "!!float":
		return d.Value, nil
	}
	return "", nodeError(file, n, "%s: expected a string, got %s", what, kindName(n))
}

// strList reads a list of strings, returning the element nodes for messages.
func strList(file string, n *yaml.Node, what string) ([]string, []*yaml.Node, error) {
	d := deref(n)
	if d == nil || d.Kind != yaml.SequenceNode {
		return nil, nil, nodeError(file, n, "%s: expected a list, got %s", what, kindName(n))
	}
	out := make([]string, 0, len(d.Content))
	for _, e := range d.Content {
		s, err := str(file, e, what)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, s)
	}
	return out, d.Content, nil
}

// oneOf reads a string that must be one of the allowed values.
func oneOf[T ~string](file string, n *yaml.Node, what string, allowed ...T) (T, error) {
	s, err := str(file, n, what)
	if err != nil {
		return "", err
	}
	for _, a := range allowed {
		if T(s) == a {
			return a, nil
		}
	}
	return "", nodeError(file, n, "%s: %q is not one of %s", what, s, joinComma(allowed))
}
