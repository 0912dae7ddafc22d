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

// scanReader is the streaming core of both guards. It hands each read to
// process (which may rewrite it, or stop the stream with an error) and holds
// back only the tail that could begin a needle, so a secret split across
// reads is still seen whole and SSE events are not delayed.
type scanReader struct {
	src     io.ReadCloser
	m       *matcher
	process func(pending []byte) ([]byte, error)
	pending []byte
	out     []byte
	buf     []byte
	err     error // sticky: io.EOF at the end, or why the stream stopped
}

func (r *scanReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		n, err := r.src.Read(r.buf)
		pending, perr := r.process(append(r.pending, r.buf[:n]...))
		if perr != nil {
			r.err, r.pending = perr, nil
			return 0, perr
		}
		keep := 0
		if err != nil {
			r.err = err // release everything: nothing more can complete a needle
		} else {
			keep = r.m.holdback(pending)
		}
		cut := len(pending) - keep
		r.out = append(r.out[:0], pending[:cut]...)
		r.pending = append(pending[:0], pending[cut:]...)
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

func (r *scanReader) Close() error { return r.src.Close() }

// leakReader passes a request body through and notes the first credential
// whose secret it carries; when blocking, it stops the body right there, so
// the secret never reaches the upstream.
type leakReader struct {
	scanReader
	block bool // false: note the hit and pass the body on (guard.leak: warn)
	hit   *credential
}

func newLeakReader(src io.ReadCloser, m *matcher, block bool) *leakReader {
	lr := &leakReader{block: block}
	lr.scanReader = scanReader{src: src, m: m, buf: make([]byte, 32*1024), process: func(b []byte) ([]byte, error) {
		if lr.hit == nil {
			if c := m.find(b); c != nil {
				lr.hit = c
				if block {
					return nil, errLeak
				}
			}
		}
		return b, nil
	}}
	return lr
}

// newRedactor replaces secrets in a response body with their placeholders as
// the body streams, calling redacted for each replacement.
func newRedactor(src io.ReadCloser, m *matcher, redacted func()) io.ReadCloser {
	return &scanReader{src: src, m: m, buf: make([]byte, 32*1024), process: func(b []byte) ([]byte, error) {
		for _, n := range m.needles {
			if bytes.Contains(b, n.b) {
				b = bytes.ReplaceAll(b, n.b, []byte(n.cred.Placeholder))
				redacted()
			}
		}
		return b, nil
	}}
}

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
