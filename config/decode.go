package config

import (
	"encoding"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decode strictly decodes the backend's options (its mapping without "type")
// into v, a pointer to the backend's own options struct. Unknown keys,
// duplicate keys and wrong types are *ConfigError values with a line. An
// undeclared or empty backend decodes nothing.
func (b BackendConfig) Decode(v any) error {
	if b.node == nil {
		return nil
	}
	what := "backend " + quote(b.Name)
	if err := checkKnown(b.file, b.node, reflect.TypeOf(v), what, 0); err != nil {
		return err
	}
	if err := b.node.Decode(v); err != nil {
		ce := typeError(b.file, err)
		ce.Msg = what + ": " + ce.Msg
		return ce
	}
	return nil
}

var (
	yamlUnmarshaler = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// checkKnown walks the node tree alongside the Go type and reports the first
// mapping key that no field would take (yaml.v3's Node.Decode has no
// KnownFields switch). Type mismatches are left to Node.Decode.
func checkKnown(file string, n *yaml.Node, t reflect.Type, what string, depth int) error {
	n = deref(n)
	if n == nil || t == nil || depth > maxAliasDepth {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		if t.Implements(yamlUnmarshaler) || t.Implements(textUnmarshaler) {
			return nil
		}
		t = t.Elem()
	}
	if t.Implements(yamlUnmarshaler) || reflect.PointerTo(t).Implements(yamlUnmarshaler) ||
		reflect.PointerTo(t).Implements(textUnmarshaler) || t == reflect.TypeOf(yaml.Node{}) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		fields, inlineMap := yamlFields(t)
		pairs, err := mappingPairs(file, n, what)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			ft, ok := fields[kv.key.Value]
			if !ok && inlineMap != nil {
				ft, ok = inlineMap.Elem(), true
			}
			if !ok {
				known := make([]string, 0, len(fields))
				for k := range fields {
					known = append(known, k)
				}
				sort.Strings(known)
				return unknownKey(file, kv.key, what, known)
			}
			if err := checkKnown(file, kv.val, ft, what+"."+kv.key.Value, depth+1); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		pairs, err := mappingPairs(file, n, what)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			if err := checkKnown(file, kv.val, t.Elem(), what+"."+kv.key.Value, depth+1); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for _, e := range n.Content {
			if err := checkKnown(file, e, t.Elem(), what, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlFields maps the keys yaml.v3 would accept for struct t to field types,
// following its rules: the yaml tag's name, else the lower-cased field name;
// ",inline" structs contribute their fields, an ",inline" map takes the rest.
func yamlFields(t reflect.Type) (map[string]reflect.Type, reflect.Type) {
	fields := map[string]reflect.Type{}
	var inlineMap reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" && !strings.Contains(string(f.Tag), ":") {
			tag = string(f.Tag)
		}
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				sub, m := yamlFields(ft)
				for k, v := range sub {
					fields[k] = v
				}
				if m != nil {
					inlineMap = m
				}
			case reflect.Map:
				inlineMap = ft
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields, inlineMap
}
