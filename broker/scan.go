package broker

import (
	"encoding/base64"
	"net/url"
	"strings"
)

// minSecret: shorter values are not looked for, since they would match by
// accident; every token a store holds is far longer.
const minSecret = 16

// scanDepth bounds how many decodings deep a value is searched (base64
// inside a JWT's claims inside base64 is two).
const scanDepth = 3

var b64 = []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding}

// leaks reports whether s carries one of secrets: as is, percent-decoded,
// or base64-decoded (whole, or any '.'-separated part, as in a JWT), to
// scanDepth decodings. What agentvault hands the agent passes through this
// last, so a secret echoed where no rewrite expected it is caught.
func leaks(s string, secrets []string) bool {
	return leaksDepth(s, secrets, scanDepth)
}

func leaksDepth(s string, secrets []string, depth int) bool {
	for _, sec := range secrets {
		if len(sec) >= minSecret && strings.Contains(s, sec) {
			return true
		}
	}
	if depth == 0 {
		return false
	}
	if u, err := url.QueryUnescape(s); err == nil && u != s && leaksDepth(u, secrets, depth-1) {
		return true
	}
	for _, part := range decodable(s) {
		if d, ok := decodeB64(part); ok && leaksDepth(d, secrets, depth-1) {
			return true
		}
	}
	return false
}

// decodeB64 decodes p in the first base64 alphabet that takes it, dropping
// up to three trailing characters so that a run cut at any length decodes.
func decodeB64(p string) (string, bool) {
	for cut := 0; cut < 4 && len(p)-cut >= minSecret; cut++ {
		for _, enc := range b64 {
			if d, err := enc.DecodeString(p[:len(p)-cut]); err == nil {
				return string(d), true
			}
		}
	}
	return "", false
}

// decodable returns s and its '.'-separated parts, and the runs of
// base64 characters in s, that are long enough to hold a secret once
// decoded.
func decodable(s string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if len(p) >= minSecret && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	add(s)
	for _, p := range strings.Split(s, ".") {
		add(p)
	}
	// A base64 value quoted inside a larger text (a JSON document that
	// was itself decoded) is found as a run of base64 characters.
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isB64(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			add(s[start:i])
			start = -1
		}
	}
	return out
}

func isB64(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '+' || c == '/' || c == '='
}

// treeLeaks walks a decoded JSON value and reports whether any key or
// string carries one of secrets.
func treeLeaks(v any, secrets []string) bool {
	switch v := v.(type) {
	case string:
		return leaks(v, secrets)
	case map[string]any:
		for k, e := range v {
			if leaks(k, secrets) || treeLeaks(e, secrets) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if treeLeaks(e, secrets) {
				return true
			}
		}
	}
	return false
}
