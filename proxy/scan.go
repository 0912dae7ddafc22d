package proxy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/url"
)

// needle is one byte pattern that betrays a secret, and whose secret it is.
type needle struct {
	b    []byte
	cred *credential
}

// matcher finds any of a set of needles in a stream. It is built per request
// from the secrets that must not appear there.
type matcher struct {
	needles []needle
}

// leakForms returns the forms of a secret the leak guard looks for: raw,
// URL-escaped, and base64 (standard and URL alphabets) at each of the three
// byte alignments it can take inside a longer encoded string, as in
// "Basic base64(user:secret)".
func leakForms(secret string) [][]byte {
	forms := [][]byte{[]byte(secret)}
	add := func(s string) {
		if len(s) < 4 {
			return
		}
		for _, f := range forms {
			if string(f) == s {
				return
			}
		}
		forms = append(forms, []byte(s))
	}
	add(url.QueryEscape(secret))
	add(url.PathEscape(secret))
	if len(secret) >= 6 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			for k := 0; k < 3; k++ {
				buf := append(make([]byte, k), secret...)
				s := enc.EncodeToString(buf)
				// Only whole 3-byte groups made entirely of secret bytes
				// encode the same whatever surrounds the secret.
				first := (k + 2) / 3
				last := (k + len(secret)) / 3
				if last > first {
					add(s[4*first : 4*last])
				}
			}
		}
	}
	return forms
}

func newMatcher(creds []*credential, forms func(string) [][]byte) *matcher {
	m := &matcher{}
	for _, c := range creds {
		for _, v := range c.values() {
			for _, f := range forms(v) {
				m.needles = append(m.needles, needle{b: f, cred: c})
			}
		}
	}
	return m
}

func (m *matcher) empty() bool { return m == nil || len(m.needles) == 0 }

// find returns the credential whose needle occurs in b, or nil.
func (m *matcher) find(b []byte) *credential {
	for _, n := range m.needles {
		if bytes.Contains(b, n.b) {
			return n.cred
		}
	}
	return nil
}

func (m *matcher) findString(s string) *credential { return m.find([]byte(s)) }

// holdback is the length of the longest suffix of b that is a proper prefix
// of some needle: the bytes a streaming scanner must keep until it sees more.
// Holding back only that much (not a fixed window) keeps SSE events flowing.
func (m *matcher) holdback(b []byte) int {
	best := 0
	for _, n := range m.needles {
		max := len(n.b) - 1
		if max > len(b) {
			max = len(b)
		}
		for l := max; l > best; l-- {
			if bytes.HasSuffix(b, n.b[:l]) {
				best = l
				break
			}
		}
	}
	return best
}

// errLeak aborts a request body that carries a secret to the wrong host.
var errLeak = errors.New("agentvault: request body carries a secret bound to another host")

// leakReader passes a request body through, holding back any tail that could
// begin a secret, so a secret split across reads is still caught and never
// reaches the upstream.
type leakReader struct {
	src     io.ReadCloser
	m       *matcher
	block   bool // false: note the hit and pass the body on (guard.leak: warn)
	pending []byte
	out     []byte
	hit     *credential
	eof     bool
	buf     []byte
}

func newLeakReader(src io.ReadCloser, m *matcher, block bool) *leakReader {
	return &leakReader{src: src, m: m, block: block, buf: make([]byte, 32*1024)}
}

func (r *leakReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.hit != nil && r.block {
			return 0, errLeak
		}
		if r.eof {
			return 0, io.EOF
		}
		n, err := r.src.Read(r.buf)
		r.pending = append(r.pending, r.buf[:n]...)
		if r.hit == nil {
			if c := r.m.find(r.pending); c != nil {
				r.hit = c
				if r.block {
					r.pending = nil
					return 0, errLeak
				}
			}
		}
		if err != nil {
			r.eof = true
			r.out, r.pending = r.pending, nil
			if err != io.EOF {
				return 0, err
			}
			continue
		}
		keep := r.m.holdback(r.pending)
		cut := len(r.pending) - keep
		r.out = append(r.out[:0], r.pending[:cut]...)
		r.pending = append(r.pending[:0], r.pending[cut:]...)
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

func (r *leakReader) Close() error { return r.src.Close() }

// redactor replaces secrets in a response body with their placeholders as the
// body streams, across read boundaries, and reports whether it replaced any.
type redactor struct {
	src      io.ReadCloser
	m        *matcher
	pending  []byte
	out      []byte
	eof      bool
	err      error
	buf      []byte
	redacted func()
}

func newRedactor(src io.ReadCloser, m *matcher, redacted func()) *redactor {
	return &redactor{src: src, m: m, buf: make([]byte, 32*1024), redacted: redacted}
}

func (r *redactor) replace(b []byte) []byte {
	for _, n := range r.m.needles {
		if bytes.Contains(b, n.b) {
			b = bytes.ReplaceAll(b, n.b, []byte(n.cred.Placeholder))
			r.redacted()
		}
	}
	return b
}

func (r *redactor) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.eof {
			return 0, r.err
		}
		n, err := r.src.Read(r.buf)
		r.pending = r.replace(append(r.pending, r.buf[:n]...))
		if err != nil {
			r.eof, r.err = true, err
			r.out, r.pending = r.pending, nil
			continue
		}
		keep := r.m.holdback(r.pending)
		cut := len(r.pending) - keep
		r.out = append(r.out[:0], r.pending[:cut]...)
		r.pending = append(r.pending[:0], r.pending[cut:]...)
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

func (r *redactor) Close() error { return r.src.Close() }

// reflectForms are the forms the reflection guard replaces: only those whose
// replacement by a placeholder yields the same text the agent would have had.
func reflectForms(secret string) [][]byte {
	forms := [][]byte{[]byte(secret)}
	if q := url.QueryEscape(secret); q != secret {
		forms = append(forms, []byte(q))
	}
	return forms
}

// lowerForms are leakForms for a case-folded channel such as a DNS name.
func lowerForms(secret string) [][]byte {
	forms := leakForms(secret)
	for i, f := range forms {
		forms[i] = bytes.ToLower(f)
	}
	return forms
}
