package proxy

import (
	"net/http"
	"strings"
)

// methodOverrideHeaders name a method other than the request line's. Many
// frameworks honour them, so a credential limited by methods: must not
// trust the request line of a request that carries one.
var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// allows reports whether the request's method and path may carry the secret.
// Anything whose meaning an upstream might read differently from the proxy
// (a method override, an encoded separator, a path parameter, a double
// encoding) is no match: the request still goes, without the secret.
func (c *credential) allows(req *http.Request) bool {
	if c.methods != nil {
		if !c.methods[req.Method] {
			return false
		}
		for _, h := range methodOverrideHeaders {
			if _, ok := req.Header[h]; ok {
				return false
			}
		}
		if req.URL.Query().Has("_method") {
			return false
		}
	}
	if len(c.Paths) == 0 {
		return true
	}
	views, ok := pathViews(req.URL.EscapedPath())
	if !ok {
		return false
	}
	for _, p := range c.Paths {
		all := true
		for _, v := range views {
			all = all && globMatch(p, v)
		}
		if all {
			return true
		}
	}
	return false
}

// pathViews decodes an escaped request path and returns the paths an
// upstream may take it to mean: dot segments removed (RFC 3986 section
// 5.2.4) after decoding, once as written and once with runs of '/' merged
// (as nginx and others do before resolving ".."). A paths: glob must match
// every view. ok is false for what has no single meaning: an encoded '/' or
// '\', a '\' or ';' (path parameters, "..;/"), a '%' left after decoding
// (double encoding), control bytes, or a malformed escape.
func pathViews(escaped string) ([]string, bool) {
	if !strings.HasPrefix(escaped, "/") {
		return nil, false
	}
	var b strings.Builder
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' {
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return nil, false
			}
			c = unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if c == '/' || c == '%' {
				return nil, false
			}
			i += 2
		}
		if c == '\\' || c == ';' || c < 0x20 || c == 0x7f {
			return nil, false
		}
		b.WriteByte(c)
	}
	decoded := b.String()
	merged := decoded
	for strings.Contains(merged, "//") {
		merged = strings.ReplaceAll(merged, "//", "/")
	}
	return []string{removeDotSegments(decoded), removeDotSegments(merged)}, true
}

// removeDotSegments is RFC 3986 section 5.2.4 for an absolute path.
func removeDotSegments(p string) string {
	in := strings.Split(p[1:], "/")
	var out []string
	for i, seg := range in {
		last := i == len(in)-1
		switch seg {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
