package proxy

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxCodings bounds the content codings stacked on one response: each layer
// costs a decoder's memory, and no real server stacks more than two.
const maxCodings = 4

// decoders are the content codings the reflection guard can read; every
// other one is refused, and limitAcceptEncoding asks for none but these.
var decoders = map[string]func(io.Reader) (io.ReadCloser, error){
	"gzip":    func(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) },
	"x-gzip":  func(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) },
	"deflate": newDeflateReader,
}

// contentCodings returns the codings of h's Content-Encoding in the order
// they were applied (identity dropped), or why the guard cannot undo them.
// Repeated header lines are one list, as RFC 9110 says.
func contentCodings(h http.Header) ([]string, string) {
	var out []string
	for _, v := range h.Values("Content-Encoding") {
		for _, part := range strings.Split(v, ",") {
			name := strings.ToLower(strings.TrimSpace(part))
			switch {
			case name == "" || name == "identity":
				continue
			case decoders[name] == nil:
				return nil, fmt.Sprintf("response body in content coding %q, which the reflection guard cannot read", printableToken(name))
			}
			out = append(out, name)
		}
	}
	if len(out) > maxCodings {
		return nil, fmt.Sprintf("response body with %d stacked content codings (the reflection guard reads at most %d)", len(out), maxCodings)
	}
	return out, ""
}

// printableToken shortens an upstream-chosen name for a refusal text and
// keeps only characters a coding name is made of.
func printableToken(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 32; i++ {
		if c := s[i]; isAlnum(c) || c == '-' || c == '.' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
