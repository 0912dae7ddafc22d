package proxy

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/agentvault/agentvault/vocab"
)

// The forms a secret can take in a request or a response: each guard looks
// for all of those that make sense for it. A form's generator takes any
// string, so the same forms are found for the secret itself and for every
// value an inject: rule builds from it (injectedValues).

// minEncoded is the shortest encoded form worth a needle: shorter ones would
// match ordinary text.
const minEncoded = 4

// formSet collects distinct forms of one string.
type formSet [][]byte

func (f *formSet) add(s string) {
	for _, g := range *f {
		if string(g) == s {
			return
		}
	}
	*f = append(*f, []byte(s))
}

// addEncoded adds an encoded form unless it is too short to be specific.
func (f *formSet) addEncoded(s string) {
	if len(s) >= minEncoded {
		f.add(s)
	}
}

// leakForms returns the forms of a secret the leak guard looks for: raw,
// percent-encoded (query and path, and every byte escaped; both hex cases),
// JSON-escaped, base64
// whole, and base64 at each of the three byte alignments it can take inside
// a longer encoded string, as in "Basic base64(user:secret)".
func leakForms(secret string) [][]byte {
	f := formSet{[]byte(secret)}
	addTextForms(&f, secret)
	for _, e := range fullPercentForms(secret) {
		f.addEncoded(e)
	}
	if len(secret) >= 6 {
		for _, s := range base64Fragments(secret) {
			f.addEncoded(s)
		}
	}
	return f
}

// reflectForms are the forms the reflection guard replaces: those a client
// decodes back to the secret as a whole (raw, percent-encoded, JSON-escaped,
// whole base64). Base64 fragments are left out: replacing the middle of a
// longer base64 string would garble data that is not the secret.
func reflectForms(secret string) [][]byte {
	f := formSet{[]byte(secret)}
	addTextForms(&f, secret)
	return f
}

func addTextForms(f *formSet, s string) {
	for _, e := range percentForms(s) {
		f.addEncoded(e)
	}
	for _, e := range jsonForms(s) {
		f.addEncoded(e)
	}
	for _, e := range base64Forms(s) {
		f.addEncoded(e)
	}
}

// lowered returns forms with every form in lower case, for a case-folded
// channel: a DNS name, a header field name (net/http writes names in its
// canonical case).
func lowered(forms func(string) [][]byte) func(string) [][]byte {
	return func(secret string) [][]byte {
		out := forms(secret)
		for i, f := range out {
			out[i] = []byte(strings.ToLower(string(f)))
		}
		return out
	}
}

// appendLower appends s to b with ASCII letters in lower case.
func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// percentForms are the query and path escapes of s, with upper-case hex (as
// Go writes them) and lower-case hex (as some other encoders do).
func percentForms(s string) []string {
	var out []string
	for _, e := range []string{url.QueryEscape(s), url.PathEscape(s)} {
		if e != s {
			out = append(out, e, lowerPercentHex(e))
		}
	}
	return out
}

// fullPercentForms are s with every byte escaped ("%41%42"): what an agent
// writes to slip a secret past a guard that knows only the escapes encoders
// make. One form: a needle made only of escapes matches its hex digits in
// any case, upper, lower or mixed (newNeedle). Three bytes for one, inside
// the token class.
func fullPercentForms(s string) []string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, 3*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, '%', hex[s[i]>>4], hex[s[i]&15])
	}
	return []string{string(b)}
}

// unescapePercent decodes every valid %XX in b (and '+' as a space, with
// plus), leaving anything else as it is: escapes that mix encoded and plain
// characters are combinatorial as needles, so text that is searched whole
// is decoded once and searched for the raw forms. It returns nil when b
// holds nothing to decode.
func unescapePercent(b []byte, plus bool) []byte {
	i := bytes.IndexByte(b, '%')
	if plus {
		if j := bytes.IndexByte(b, '+'); j >= 0 && (i < 0 || j < i) {
			i = j
		}
	}
	if i < 0 {
		return nil
	}
	out := make([]byte, i, len(b))
	copy(out, b[:i])
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]):
			out = append(out, unhex(b[i+1])<<4|unhex(b[i+2]))
			i += 2
		case c == '+' && plus:
			out = append(out, ' ')
		default:
			out = append(out, c)
		}
	}
	return out
}

// findUnescaped looks for the needles in b percent-decoded, with '+' kept
// and as a space (a query or form body); nil when b has no escapes.
func findUnescaped(m *matcher, b []byte) *credential {
	if bytes.IndexByte(b, '%') < 0 {
		return nil
	}
	for _, plus := range []bool{false, true} {
		if plus && bytes.IndexByte(b, '+') < 0 {
			break // the same text again
		}
		if d := unescapePercent(b, plus); d != nil {
			if c := m.find(d); c != nil {
				return c
			}
		}
	}
	return nil
}

// lowerPercentHex lower-cases the two hex digits after every '%'.
func lowerPercentHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerASCII(b[i+1]), lowerASCII(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// base64Forms are s in whole base64, standard and URL alphabets, with and
// without padding.
func base64Forms(s string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		out = append(out, enc.EncodeToString([]byte(s)))
	}
	return out
}

// base64Fragments are the parts of s's base64 encoding that are the same
// whatever surrounds s, at each of the three alignments s can take.
func base64Fragments(s string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for k := 0; k < 3; k++ {
			buf := append(make([]byte, k), s...)
			e := enc.EncodeToString(buf)
			// Only whole 3-byte groups made entirely of s's bytes encode
			// the same whatever surrounds s.
			first := (k + 2) / 3
			last := (k + len(s)) / 3
			if last > first {
				out = append(out, e[4*first:4*last])
			}
		}
	}
	return out
}

// jsonStyle is one way a JSON encoder writes a string.
type jsonStyle struct {
	html  bool // <, > and & as \u003c, \u003e, \u0026 (Go's default)
	lines bool // U+2028 and U+2029 escaped (Go, always)
	ascii bool // every non-ASCII character escaped (Python, PHP)
	slash bool // "/" as "\/" (PHP)
	punct bool // every ASCII character but letters and digits escaped
	upper bool // hex digits in upper case
}

// jsonStyles are the encoders' styles the guards know: JavaScript's
// JSON.stringify, Go's encoding/json with and without HTML escaping,
// Python's ensure_ascii, PHP's json_encode, and an encoder that escapes
// every punctuation character (as in "\u005f" for "_"); each with lower- and
// upper-case hex.
var jsonStyles = func() []jsonStyle {
	base := []jsonStyle{{}, {lines: true}, {html: true, lines: true}, {ascii: true}, {ascii: true, slash: true}, {ascii: true, punct: true}}
	var out []jsonStyle
	for _, s := range base {
		out = append(out, s)
		s.upper = true
		out = append(out, s)
	}
	return out
}()

// jsonForms are the JSON string escapes of s (without the quotes) that
// differ from s.
func jsonForms(s string) []string {
	// Most API keys hold nothing that any style but punct escapes.
	special := false
	for i := 0; i < len(s) && !special; i++ {
		special = s[i] < 0x20 || s[i] >= utf8.RuneSelf || strings.IndexByte(`"\/<>&`, s[i]) >= 0
	}
	var out []string
	for _, st := range jsonStyles {
		if !special && !st.punct {
			continue
		}
		if e := jsonEscape(s, st); e != s {
			out = append(out, e)
		}
	}
	return out
}

// jsonEscape writes s as the inside of a JSON string in style st. Invalid
// UTF-8 becomes \ufffd, as Go writes it.
func jsonEscape(s string, st jsonStyle) string {
	hex := "0123456789abcdef"
	if st.upper {
		hex = "0123456789ABCDEF"
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	u := func(r rune) {
		b.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			b.WriteByte(hex[(r>>shift)&0xF])
		}
	}
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			u(0xFFFD)
		case r < utf8.RuneSelf && st.punct && !isAlnum(byte(r)):
			u(r)
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			u(r)
		case r == '/' && st.slash:
			b.WriteString(`\/`)
		case (r == '<' || r == '>' || r == '&') && st.html:
			u(r)
		case (r == '\u2028' || r == '\u2029') && (st.lines || st.ascii):
			u(r)
		case r >= utf8.RuneSelf && st.ascii:
			if r > 0xFFFF {
				r -= 0x10000
				u(0xD800 + (r>>10)&0x3FF)
				u(0xDC00 + r&0x3FF)
			} else {
				u(r)
			}
		case size == 1:
			b.WriteByte(byte(r))
		default:
			b.WriteString(s[i-size : i])
		}
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// injectedValues are the strings other than the secret that the
// credential's inject: rules write into a request and that carry the
// secret: "user:secret" for Basic (sent in base64), "Bearer secret", a
// header's format. Their encoded forms (above all the whole base64 of a
// Basic header) betray the secret as surely as the secret itself.
func (c *credential) injectedValues(secret string) []string {
	if secret == "" || c.hasAWS {
		return nil
	}
	var out []string
	for _, r := range c.rules {
		switch inj := r.inj.(type) {
		case basicInjector:
			out = append(out, inj.username+":"+secret)
		case bearerInjector:
			out = append(out, "Bearer "+secret)
		case headerInjector:
			if strings.Contains(inj.format, vocab.SecretToken) {
				out = append(out, strings.ReplaceAll(inj.format, vocab.SecretToken, secret))
			}
		}
	}
	return out
}
