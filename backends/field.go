package backends

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// SplitField splits a reference into its base and its "#field" suffix. The
// last '#' is used so that a path containing '#' can still name a field; a
// trailing '#' with nothing after it is not a field and stays in base, so the
// backend reports the reference as written instead of silently dropping it.
func SplitField(ref string) (base, field string) {
	i := strings.LastIndexByte(ref, '#')
	if i < 0 || i == len(ref)-1 {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}

// ExtractField returns the named top-level field of value, which must be a
// JSON object. Strings are returned as is, numbers in their JSON spelling and
// booleans as "true"/"false". Errors name the field but never quote the value:
// encoding/json's own messages can echo characters of the input, so they are
// not wrapped.
func ExtractField(value, field string) (string, error) {
	if field == "" {
		return "", fmt.Errorf("empty field name")
	}
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
		return "", fmt.Errorf("field %q requested but the value is not a JSON object", field)
	}
	raw, ok := obj[field]
	if !ok {
		return "", fmt.Errorf("field %q not found in the JSON object", field)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", fmt.Errorf("field %q is empty", field)
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("field %q is not a valid JSON string", field)
		}
		return s, nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", fmt.Errorf("field %q is not a valid JSON boolean", field)
		}
		return fmt.Sprint(b), nil
	case 'n':
		return "", fmt.Errorf("field %q is null", field)
	case '{', '[':
		return "", fmt.Errorf("field %q is an object or array, want a string, number or boolean", field)
	default:
		// Keep the number's own spelling: float64 would turn a long numeric
		// PIN or account id into 1.2345e+18.
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", fmt.Errorf("field %q is not a valid JSON value", field)
		}
		return n.String(), nil
	}
}

// trimOneNewline removes exactly one trailing "\n" or "\r\n" and nothing else,
// as the spec demands for file and exec values.
func trimOneNewline(s string) string {
	if strings.HasSuffix(s, "\r\n") {
		return s[:len(s)-2]
	}
	return strings.TrimSuffix(s, "\n")
}

// applyField extracts field from value when one was given.
func applyField(value, field string) (string, error) {
	if field == "" {
		return value, nil
	}
	v, err := ExtractField(value, field)
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", fmt.Errorf("field %q is an empty string", field)
	}
	return v, nil
}
