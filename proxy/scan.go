package proxy

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// needle is one byte pattern that betrays a secret, and whose secret it is.
type needle struct {
	b      []byte
	s      string // b, for header values and URLs: no conversion per search
	anchor int    // index in b of its rarest byte in ordinary text: see in
	// fold: b is made only of %XX escapes, whose hex digits a decoder reads
	// in either case: it matches with its letters in any case (%2f%2F), so
	// one needle covers every mix an agent could write.
	fold bool
	cred *credential
}

// newNeedle builds the needle for form b of cred's secret.
func newNeedle(b []byte, cred *credential) needle {
	n := needle{b: b, s: string(b), anchor: anchorOf(b), fold: allEscapes(b), cred: cred}
	if n.fold {
		n.anchor = 0 // a '%': the same in every case
	}
	return n
}

// allEscapes reports whether b is nothing but %XX escapes.
func allEscapes(b []byte) bool {
	if len(b) == 0 || len(b)%3 != 0 {
		return false
	}
	for i := 0; i < len(b); i += 3 {
		if b[i] != '%' || !isHex(b[i+1]) || !isHex(b[i+2]) {
			return false
		}
	}
	return true
}

// in reports whether n occurs in b. It looks for n's rarest byte (by a
// fixed table of how common bytes are in text, JSON and code) with
// IndexByte and compares around each hit: bytes.Contains starts from the
// first byte, which for a needle like "real-..." or a base64 run is a
// common letter, and scans four needles over every byte of a download at
// a quarter of the speed. The result is bytes.Contains's; after many false
// hits (text full of the anchor) it hands over to bytes.Index.
func (n *needle) in(b []byte) bool { return n.index(b) >= 0 }

// index is where n first occurs in b, or -1.
func (n *needle) index(b []byte) int {
	nb := n.b
	off, c := n.anchor, nb[n.anchor]
	last := len(b) - len(nb) + off // the last place the anchor can be
	fails := 0
	for i := off; i <= last; i++ {
		j := bytes.IndexByte(b[i:last+1], c)
		if j < 0 {
			return -1
		}
		i += j
		if at := b[i-off : i-off+len(nb)]; n.fold && bytes.EqualFold(at, nb) || bytes.Equal(at, nb) {
			return i - off
		}
		if fails++; fails > 16+(i>>5) && !n.fold {
			if k := bytes.Index(b[i-off+1:], nb); k >= 0 {
				return i - off + 1 + k
			}
			return -1
		}
	}
	return -1
}

// replace writes ph for every occurrence of n in b.
func (n *needle) replace(b []byte, ph string) []byte {
	if !n.fold {
		return bytes.ReplaceAll(b, n.b, []byte(ph))
	}
	var out []byte
	rest := b
	for {
		i := n.index(rest)
		if i < 0 {
			break
		}
		out = append(append(out, rest[:i]...), ph...)
		rest = rest[i+len(n.b):]
	}
	return append(out, rest...)
}

// commonness ranks bytes by how often they occur in the text a proxy
// carries (English, JSON, code): the rarest byte of a needle is its anchor.
var commonness = func() (t [256]uint8) {
	for i := range t {
		t[i] = 5 // other punctuation, bytes >= 0x80
	}
	for i := 0; i < 0x20; i++ {
		t[i] = 2
	}
	t['\n'], t['\t'] = 60, 40
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = 12
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 25
	}
	// Lower case by English frequency, most common first.
	for i, c := range "etaoinsrhldcumfpgwybvkxjqz" {
		t[c] = uint8(90 - 2*i)
	}
	for c, v := range map[byte]uint8{' ': 100, '"': 60, ',': 40, ':': 40, '.': 40, '/': 30, '-': 25, '_': 20, '=': 15, '\\': 3} {
		t[c] = v
	}
	return t
}()

// anchorOf is the index of b's rarest byte by commonness.
func anchorOf(b []byte) int {
	best := 0
	for i := range b {
		if commonness[b[i]] < commonness[b[best]] {
			best = i
		}
	}
	return best
}

// matcher finds any of a set of needles in a stream. It is built per request
// from the secrets that must not appear there, by newMatcher.
//
// Invariant: what a streaming guard holds back (holdback) depends only on the
// bytes' membership in hold, a class fixed when the matcher is built from
// three public levels, and on maxLen; never on whether the bytes match a
// secret. A guard that held back "what could begin a secret" would delay a
// guessed prefix exactly when the guess is right: a timing oracle that gives
// the secret away one character at a time.
type matcher struct {
	needles []needle
	hold    *byteClass // nil: not built by newMatcher, see holdback
	maxLen  int        // the hold-back cap + 1: see newMatcher
}

// maxExpansion is the most any form makes of one byte: a JSON \u00XX escape
// writes 6 bytes for 1 (percent-encoding 3, base64 under 2).
const maxExpansion = 6

func newMatcher(creds []*credential, forms func(string) [][]byte) *matcher {
	values := make([]string, len(creds))
	for i, c := range creds {
		values[i] = c.current()
	}
	return newMatcherOf(creds, values, forms)
}

// newMatcherOf is newMatcher for the given values of creds (one each).
func newMatcherOf(creds []*credential, values []string, forms func(string) [][]byte) *matcher {
	m := &matcher{}
	longestInput := 0
	for i, c := range creds {
		ns := c.needlesOf(values[i], forms)
		longestInput = max(longestInput, ns.longestInput)
		for _, b := range ns.forms {
			n := newNeedle(b, c)
			if n.fold && m.hasFold(n) {
				continue // the same escapes in another hex case
			}
			m.needles = append(m.needles, n)
		}
	}
	// Longest first: when one credential's value holds another's, redacting
	// the shorter first would leave the rest of the longer one in view.
	slices.SortStableFunc(m.needles, func(a, b needle) int { return len(b.b) - len(a.b) })
	m.hold, m.maxLen = classify(m.needles)
	// The cap is a function of the values' lengths alone. The longest
	// needle would do for correctness, but its length tells how many of a
	// secret's characters need escaping (each punctuation character adds 5
	// to its \u00XX form), and an agent can measure the cap by sending a
	// long run of class bytes and pausing.
	if len(m.needles) > 0 {
		m.maxLen = max(m.maxLen, maxExpansion*longestInput)
	}
	return m
}

// minimalNeedles drops empty and duplicate forms, and any form that holds
// another of the same credential's forms: finding the shorter one finds both,
// and redacting it removes the secret from the longer one. Fewer and shorter
// needles also keep the hold-back window (the longest needle) small.
func minimalNeedles(forms [][]byte) [][]byte {
	var out [][]byte
	for i, f := range forms {
		if len(f) == 0 {
			continue
		}
		redundant := false
		for j, g := range forms {
			if i == j || len(g) == 0 || len(g) > len(f) || !bytes.Contains(f, g) {
				continue
			}
			// Of two equal forms keep the first; a strictly shorter one
			// contained in f always wins.
			if len(g) < len(f) || j < i {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, f)
		}
	}
	return out
}

// hasFold reports whether a case-folding needle of n's credential already
// matches what n does.
func (m *matcher) hasFold(n needle) bool {
	for _, o := range m.needles {
		if o.fold && o.cred == n.cred && bytes.EqualFold(o.b, n.b) {
			return true
		}
	}
	return false
}

func (m *matcher) empty() bool { return m == nil || len(m.needles) == 0 }

// findLeak is find for the leak guard: b is also searched percent-decoded
// when it holds a '%' (escapes that mix encoded and plain characters, see
// unescapePercent), and the needles made only of escapes are skipped when
// it holds none. A form with mixed escapes is made of the secret's bytes,
// '%' and hex digits, and is at most three times the secret's length, so it
// lies in the hold-back class and under the cap like every form: a
// streaming scan sees it whole.
func (m *matcher) findLeak(b []byte) *credential {
	pct := bytes.IndexByte(b, '%') >= 0
	for i := range m.needles {
		if n := &m.needles[i]; (pct || !n.fold) && n.in(b) {
			return n.cred
		}
	}
	if pct {
		return findUnescaped(m, b)
	}
	return nil
}

// find returns the credential whose needle occurs in b, or nil.
func (m *matcher) find(b []byte) *credential {
	for i := range m.needles {
		if m.needles[i].in(b) {
			return m.needles[i].cred
		}
	}
	return nil
}

func (m *matcher) findString(s string) *credential {
	for i := range m.needles {
		n := &m.needles[i]
		if n.fold {
			if strings.IndexByte(s, '%') >= 0 && n.in([]byte(s)) {
				return n.cred
			}
			continue
		}
		if strings.Contains(s, n.s) {
			return n.cred
		}
	}
	return nil
}

// redact replaces every complete needle in b with its credential's
// placeholder and reports whether it replaced anything. Only complete
// matches change anything: a partial one costs the same as none.
func (m *matcher) redact(b []byte) ([]byte, bool) {
	hit := false
	for i := range m.needles {
		if n := &m.needles[i]; n.in(b) {
			b = n.replace(b, n.cred.Placeholder)
			hit = true
		}
	}
	return b, hit
}

// redactString is redact for a header value.
func (m *matcher) redactString(s string) (string, bool) {
	if m.findString(s) == nil {
		return s, false
	}
	b, hit := m.redact([]byte(s))
	if !hit {
		return s, false
	}
	return string(b), true
}

// holdback is how many bytes at the end of b a streaming scanner keeps until
// it sees more: the trailing run of bytes in the matcher's class, at most the
// longest needle's length - 1. Every needle lies wholly inside the class, so
// a needle cut by the end of b is always inside that run; the run's length
// says nothing about whether it matches.
func (m *matcher) holdback(b []byte) int {
	if m.empty() {
		return 0
	}
	hold, maxLen := m.hold, m.maxLen
	if hold == nil {
		hold, maxLen = classify(m.needles)
	}
	n := 0
	for n < len(b) && n < maxLen-1 && hold[b[len(b)-1-n]] {
		n++
	}
	return n
}

// errLeak aborts a request body that carries a secret to the wrong host.
var errLeak = errors.New("agentvault: request body carries a secret bound to another host")

// scanReader is the streaming core of both guards. It hands each read to
// process (which may rewrite it, or stop the stream with an error) and holds
// back the tail the matcher's holdback names, so a secret split across reads
// is still seen whole while the timing of every release depends only on the
// public class of the bytes (see matcher).
type scanReader struct {
	src     io.ReadCloser
	m       *matcher
	process func(pending []byte) ([]byte, error)
	buf     []byte  // storage: the held-back tail at its front, the next read after it
	out     []byte  // released and not yet returned (aliases buf or process's result)
	tail    []byte  // held back, the start of the next pending (aliases the same)
	err     error   // sticky: io.EOF at the end, or why the stream stopped
	pooled  *[]byte // buf came from scanBufs
}

// scanChunk is the most one read of the source asks for.
const scanChunk = 32 << 10

// scanBufs recycles the buffers of streams read to their end: every
// chunked or compressed response streams through a scanReader.
var scanBufs = sync.Pool{New: func() any { b := make([]byte, 0, scanChunk+4<<10); return &b }}

func newScanReader(src io.ReadCloser, m *matcher, process func([]byte) ([]byte, error)) scanReader {
	r := scanReader{src: src, m: m, process: process}
	if bp := scanBufs.Get().(*[]byte); cap(*bp) >= scanChunk+m.maxLen {
		r.buf, r.pooled = (*bp)[:0], bp
	} else {
		scanBufs.Put(bp)
		r.buf = make([]byte, 0, scanChunk+m.maxLen)
	}
	return r
}

// release gives the buffer back once nothing refers to it any more: at the
// end of the stream, after the last byte was handed out, on the reading
// goroutine. A stream closed earlier leaves it to the collector, since Close
// may come from another goroutine.
func (r *scanReader) release() {
	if r.pooled != nil {
		*r.pooled = r.buf[:0]
		scanBufs.Put(r.pooled)
		r.pooled, r.buf, r.tail = nil, nil, nil
	}
}

// Read releases what is already processed, else reads once more. The data
// is read into buf right after the held-back tail and handed out from
// there: no copy but the one into p.
func (r *scanReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			r.release()
			return 0, r.err
		}
		if need := len(r.tail) + scanChunk; cap(r.buf) < need {
			r.buf = make([]byte, 0, need)
		}
		// out is empty, so the tail may move to the front over it.
		pending := append(r.buf[:0], r.tail...)
		n, err := r.src.Read(pending[len(pending) : len(pending)+scanChunk])
		pending, perr := r.process(pending[:len(pending)+n])
		if perr != nil {
			r.err, r.tail = perr, nil
			return 0, perr
		}
		keep := 0
		if err != nil {
			r.err = err // release everything: nothing more can complete a needle
		} else {
			keep = r.m.holdback(pending)
		}
		cut := len(pending) - keep
		r.out, r.tail = pending[:cut], pending[cut:]
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

func (r *scanReader) Close() error { return r.src.Close() }

// readyNow: the next Read returns released bytes or the sticky error
// without reading the source (see flushingBody).
func (r *scanReader) readyNow() bool { return len(r.out) > 0 || r.err != nil }

// leakReader passes a request body through and notes the first credential
// whose secret it carries; when blocking, it stops the body right there, so
// the secret never reaches the upstream.
type leakReader struct {
	scanReader
	block bool // false: note the hit and pass the body on (guard.leak: warn)
	hit   *credential
	// unreadable says why a compressed body could not be scanned to its
	// end (reqcodings.go); the body stopped there when blocking.
	unreadable string
}

func newLeakReader(src io.ReadCloser, m *matcher, block bool) *leakReader {
	lr := &leakReader{block: block}
	lr.scanReader = newScanReader(src, m, func(b []byte) ([]byte, error) {
		if lr.hit == nil {
			if c := m.findLeak(b); c != nil {
				lr.hit = c
				if block {
					return nil, errLeak
				}
			}
		}
		return b, nil
	})
	return lr
}

// newRedactor replaces secrets in a response body with their placeholders as
// the body streams, calling redacted for each read that replaced something.
func newRedactor(src io.ReadCloser, m *matcher, redacted func()) io.ReadCloser {
	sr := newScanReader(src, m, func(b []byte) ([]byte, error) {
		b, hit := m.redact(b)
		if hit {
			redacted()
		}
		return b, nil
	})
	return &sr
}

// credNeedles are one credential value's minimal needles for one kind of
// forms, and the longest input they came from.
type credNeedles struct {
	forms        [][]byte
	longestInput int
}

// needleKey names a credential value and a forms function.
type needleKey struct {
	value string
	forms uintptr
}

// maxNeedleSets bounds a credential's needle cache: a rotation brings a new
// value, and old ones are dropped wholesale.
const maxNeedleSets = 16

// needlesOf returns the credential's needles for forms of its value v,
// computed once per value: matchers are built often, and the forms
// (encodings, escapes, base64 fragments, the minimal set) cost far more
// than a lookup.
func (c *credential) needlesOf(v string, forms func(string) [][]byte) credNeedles {
	key := needleKey{value: v, forms: reflect.ValueOf(forms).Pointer()}
	c.needleMu.Lock()
	defer c.needleMu.Unlock()
	if ns, ok := c.needles[key]; ok {
		return ns
	}
	var own [][]byte
	longest := 0
	for _, s := range c.valuesOf(v) {
		own = append(own, forms(s)...)
		longest = max(longest, len(s))
	}
	for _, s := range c.injectedValues(v) {
		own = append(own, forms(s)...)
		longest = max(longest, len(s))
	}
	ns := credNeedles{forms: minimalNeedles(own), longestInput: longest}
	if c.needles == nil || len(c.needles) >= maxNeedleSets {
		c.needles = map[needleKey]credNeedles{}
	}
	c.needles[key] = ns
	return ns
}
