// Package redact masks known secret values and placeholders in text that
// agentvault writes: refusal bodies, audit records, the summary, warnings and
// error lines. Every output path uses one Redactor, so one style reaches the
// user and no path forgets an encoding.
//
// Invariants:
//   - a value added with AddSecret is masked in every form Forms lists (raw,
//     percent-encoded in both hex cases, base64 in the four alphabets at each
//     alignment, lower case), whatever text it appears in;
//   - a value once added stays masked for the Redactor's life, so a rotated-out
//     value is still masked in the summary;
//   - the replacement never contains the value: it names the credential.
package redact

import (
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// minDerived is the shortest value whose derived forms (encodings, case) are
// masked: shorter ones would blank out ordinary text, and a value that short
// has no secrecy left to protect in them.
const minDerived = 4

// Redactor masks the values added to it. The zero value is ready; it is safe
// for concurrent use.
type Redactor struct {
	mu    sync.RWMutex
	pairs map[string]string // form -> replacement
	r     *strings.Replacer
}

// SecretMark and PlaceholderMark are how a masked value reads.
func SecretMark(name string) string      { return "[" + name + "]" }
func PlaceholderMark(name string) string { return "[" + name + " placeholder]" }

// AddSecret masks value, in every form of Forms, as SecretMark(name).
func (r *Redactor) AddSecret(name, value string) { r.add(value, SecretMark(name)) }

// AddPlaceholder masks a credential's placeholder as PlaceholderMark(name).
func (r *Redactor) AddPlaceholder(name, value string) { r.add(value, PlaceholderMark(name)) }

func (r *Redactor) add(value, with string) {
	if value == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pairs == nil {
		r.pairs = map[string]string{}
	}
	changed := false
	for _, f := range Forms(value) {
		if _, ok := r.pairs[f]; !ok {
			r.pairs[f] = with
			changed = true
		}
	}
	if changed {
		r.r = nil
	}
}

// String returns s with every known value masked.
func (r *Redactor) String(s string) string {
	if r == nil || s == "" {
		return s
	}
	r.mu.RLock()
	rep := r.r
	n := len(r.pairs)
	r.mu.RUnlock()
	if n == 0 {
		return s
	}
	if rep == nil {
		rep = r.build()
	}
	return rep.Replace(s)
}

// build makes the replacer, longest forms first: strings.Replacer prefers
// earlier pairs at one position, so a whole form wins over a shorter one
// (a base64 run over a raw value that happens to be inside it).
func (r *Redactor) build() *strings.Replacer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.r != nil {
		return r.r
	}
	forms := make([]string, 0, len(r.pairs))
	for f := range r.pairs {
		forms = append(forms, f)
	}
	sort.Slice(forms, func(i, j int) bool {
		if len(forms[i]) != len(forms[j]) {
			return len(forms[i]) > len(forms[j])
		}
		return forms[i] < forms[j]
	})
	args := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		args = append(args, f, r.pairs[f])
	}
	r.r = strings.NewReplacer(args...)
	return r.r
}

// Forms lists the forms in which value can appear in text: raw; lower case
// (host names are case-folded); percent-encoded for a query and for a path,
// with upper- and lower-case hex digits; and base64 in the standard and URL
// alphabets at each of the three byte alignments a value can take inside a
// longer encoded string (as in "Basic base64(user:secret)"), keeping only the
// whole 3-byte groups made entirely of the value's bytes, which encode the
// same whatever surrounds them.
func Forms(value string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string, min int) {
		if len(s) < min || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
	}
	add(value, 1)
	if len(value) < minDerived {
		return out
	}
	add(strings.ToLower(value), minDerived)
	for _, esc := range []string{url.QueryEscape(value), url.PathEscape(value), percentAll(value)} {
		add(esc, minDerived)
		add(lowerHex(esc), minDerived)
	}
	for _, b := range Base64Runs(value) {
		add(b, minDerived)
	}
	return out
}

// Base64Runs returns the runs of base64 text (standard and URL alphabets) that
// encode value whatever bytes surround it: one per alignment (0, 1 or 2 bytes
// before it in its 3-byte group).
func Base64Runs(value string) []string {
	if len(value) < 6 {
		return nil
	}
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for k := 0; k < 3; k++ {
			buf := append(make([]byte, k), value...)
			s := enc.EncodeToString(buf)
			first := (k + 2) / 3
			last := (k + len(value)) / 3
			if last > first {
				out = append(out, s[4*first:4*last])
			}
		}
	}
	return out
}

// percentAll escapes every byte outside the unreserved set, which is what
// encodeURIComponent-style encoders and many clients write.
func percentAll(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// lowerHex rewrites the hex digits of every %XX escape in lower case.
func lowerHex(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if b[j] >= 'A' && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}
