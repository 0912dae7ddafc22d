package proxy

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// maxCodings bounds the content codings stacked on one response: each layer
// costs a decoder's memory, and no real server stacks more than two.
const maxCodings = 4

// decoders are the content codings the reflection guard can read; every
// other one is refused, and limitAcceptEncoding asks for none but these.
var decoders = map[string]func(io.Reader) (io.ReadCloser, error){
	"gzip":    newGzipReader,
	"x-gzip":  newGzipReader,
	"deflate": newDeflateReader,
}

// gzipReaders recycles gzip decoders (each holds a 32 KiB window): most
// agents' responses are gzip, and each used to allocate its own.
var gzipReaders sync.Pool

func newGzipReader(r io.Reader) (io.ReadCloser, error) {
	if z, ok := gzipReaders.Get().(*gzip.Reader); ok {
		if err := z.Reset(r); err != nil {
			return nil, err
		}
		return &pooledGzip{z: z}, nil
	}
	z, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	return &pooledGzip{z: z}, nil
}

// pooledGzip returns its decoder to gzipReaders at the end of the stream,
// on the reading goroutine; a stream closed earlier leaves it to the
// collector, since Close may come from another goroutine.
type pooledGzip struct{ z *gzip.Reader }

func (p *pooledGzip) Read(b []byte) (int, error) {
	if p.z == nil {
		return 0, io.EOF
	}
	n, err := p.z.Read(b)
	if err == io.EOF {
		gzipReaders.Put(p.z)
		p.z = nil
	}
	return n, err
}

func (p *pooledGzip) Close() error { return nil }

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
