package session

import (
	"crypto/rand"
	"math"
	"strings"

	"github.com/agentvault/agentvault/config"
)

// Markers put a fixed, recognisable word at the start of a placeholder's
// random part, spelled in the token's own alphabet: "agentvault" where the
// alphabet has lower-case letters, "AGENTVAULT" where it has only upper-case
// ones, and "2436882858" (agentvault on a phone keypad) where it has only
// digits or hex digits.
const (
	PlaceholderMarker = "agentvault"
	markerUpper       = "AGENTVAULT"
	markerDigits      = "2436882858"
)

const (
	// placeholderBits is the least randomness a placeholder carries, marker
	// and copied prefix not counted.
	placeholderBits = 128
	// fallbackRandom base62 characters (about 190 bits) follow the marker
	// when the secret is not shaped like a token.
	fallbackRandom = 32

	digits = "0123456789"
	lower  = "abcdefghijklmnopqrstuvwxyz"
	upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	base62 = digits + upper + lower
)

// Placeholder returns the value the child sees instead of c's secret, whose
// current value is real: the configured placeholder if there is one, else a
// random value shaped like real (see shapedPlaceholder). Call it once per
// credential per session. The result is never real itself, holds only
// characters that need no escaping in a header, a URL or a shell, and its
// random part carries at least 128 bits.
func Placeholder(c config.Credential, real string) string {
	if c.Placeholder != "" {
		return c.Placeholder
	}
	prefix := ""
	if p, ok := config.LookupPreset(c.Preset); ok {
		prefix = p.PlaceholderPrefix
	}
	// A repeat of real needs 128 random bits to come out equal; the bound
	// only guards a broken random source.
	for range 8 {
		if p := shapedPlaceholder(real, prefix); p != real {
			return p
		}
	}
	panic("session: placeholders keep coming out equal to the secret")
}

// shapedPlaceholder keeps what SDKs check of a token and draws the rest:
//
//   - a JWT keeps its header and claims; its signature is drawn anew;
//   - any other token keeps a known vendor prefix (knownPrefixes), the places
//     of its '.' (and of the separators its format fixes), its length and,
//     part by part, its alphabet: digits, hex digits or letters of either
//     case, and '-', '_', '~' where the part has them;
//   - a value that is not shaped like a token (a password with symbols, a
//     JSON document) becomes fallbackPrefix + "agentvault" + 32 base62.
//
// The marker starts the random part. A token too short for the marker and
// 128 random bits gets a longer placeholder: randomness wins over length.
// What the child learns of real this way is its format, never a character
// of its random part.
func shapedPlaceholder(real, fallbackPrefix string) string {
	if head, sig, ok := splitJWT(real); ok {
		if p, ok := build(head, []string{sig}, nil); ok {
			return p
		}
	}
	if tokenLike(real) {
		tp, _ := knownPrefix(real)
		segs, seps := splitKeep(real[len(tp.prefix):], "."+tp.keep)
		if p, ok := build(tp.prefix, segs, seps); ok {
			return p
		}
	}
	return fallbackPrefix + PlaceholderMarker + randomFrom(base62, fallbackRandom)
}

// splitKeep cuts s at every byte in seps, returning the parts and the
// separator that follows each part but the last.
func splitKeep(s, seps string) ([]string, []byte) {
	var parts []string
	var cuts []byte
	start := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(seps, s[i]) >= 0 {
			parts = append(parts, s[start:i])
			cuts = append(cuts, s[i])
			start = i + 1
		}
	}
	return append(parts, s[start:]), cuts
}

// build draws each part from its own alphabet at its own length, with the
// marker at the start of the first part able to hold it, and lengthens that
// part if the random characters fall short of placeholderBits.
func build(prefix string, parts []string, seps []byte) (string, bool) {
	alpha := make([]string, len(parts))
	for i, p := range parts {
		alpha[i] = partAlphabet(p)
	}
	m := markerPart(parts, alpha)
	for i := range alpha {
		if alpha[i] == "" && (i == m || parts[i] != "") {
			alpha[i] = base62 // an empty part, or one of '+', '/' and '=' only
		}
	}
	marker := markerFor(alpha[m])
	if marker == "" || len(alpha[m]) < 2 {
		return "", false
	}
	n := make([]int, len(parts))
	bits := 0.0
	for i, p := range parts {
		n[i] = len(p)
		if i == m {
			n[i] = max(len(p)-len(marker), 0)
		}
		if n[i] > 0 {
			bits += float64(n[i]) * math.Log2(float64(len(alpha[i])))
		}
	}
	if bits < placeholderBits {
		n[m] += int(math.Ceil((placeholderBits - bits) / math.Log2(float64(len(alpha[m])))))
	}
	var b strings.Builder
	b.WriteString(prefix)
	for i := range parts {
		if i == m {
			b.WriteString(marker)
		}
		if n[i] > 0 {
			b.WriteString(randomFrom(alpha[i], n[i]))
		}
		if i < len(seps) {
			b.WriteByte(seps[i])
		}
	}
	return b.String(), true
}

// markerPart picks the part that carries the marker: the first long enough
// to hold it as a word, else the first long enough for the digit form,
// else the longest.
func markerPart(parts, alpha []string) int {
	for i, p := range parts {
		if mk := markerFor(alpha[i]); len(p) >= len(PlaceholderMarker) && (mk == PlaceholderMarker || mk == markerUpper) {
			return i
		}
	}
	longest := 0
	for i, p := range parts {
		if len(p) >= len(PlaceholderMarker) && markerFor(alpha[i]) != "" {
			return i
		}
		if len(p) > len(parts[longest]) {
			longest = i
		}
	}
	return longest
}

// markerFor spells the marker in alphabet, or "" if it cannot.
func markerFor(alphabet string) string {
	switch {
	case strings.Contains(alphabet, lower):
		return PlaceholderMarker
	case strings.Contains(alphabet, upper):
		return markerUpper
	case strings.Contains(alphabet, digits):
		return markerDigits
	}
	return ""
}

// partAlphabet is the alphabet a part of a token is drawn from: the
// character classes it uses. Letters within a-f next to digits, in a part of
// 16 or more, are hex; '+', '/' and '=' (standard base64) are left out,
// since they would need escaping in a URL.
func partAlphabet(p string) string {
	var hasDigit, hasLower, hasUpper, lowHex, upHex = false, false, false, true, true
	var specials strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c >= '0' && c <= '9':
			hasDigit = true
		case c >= 'a' && c <= 'z':
			hasLower, lowHex = true, lowHex && c <= 'f'
		case c >= 'A' && c <= 'Z':
			hasUpper, upHex = true, upHex && c <= 'F'
		case c == '-' || c == '_' || c == '~':
			if !strings.ContainsRune(specials.String(), rune(c)) {
				specials.WriteByte(c)
			}
		}
	}
	hex := len(p) >= 16 && hasDigit && (hasLower || hasUpper) && (!hasLower || lowHex) && (!hasUpper || upHex)
	var b strings.Builder
	if hasDigit {
		b.WriteString(digits)
	}
	switch {
	case hasLower && hex:
		b.WriteString("abcdef")
	case hasLower:
		b.WriteString(lower)
	}
	switch {
	case hasUpper && hex:
		b.WriteString("ABCDEF")
	case hasUpper:
		b.WriteString(upper)
	}
	b.WriteString(specials.String())
	return b.String()
}

// randomFrom draws n characters uniformly from alphabet (at most 256) with
// crypto/rand, rejecting the bytes that would bias the modulo.
func randomFrom(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2+8)
	// An alphabet of 2 or more keeps at least half the bytes each round;
	// the bound only guards a broken random source.
	for round := 0; len(out) < n; round++ {
		if round == 64 {
			panic("session: crypto/rand keeps returning rejected bytes")
		}
		rand.Read(buf) // never fails since Go 1.24 (it aborts the process instead)
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}
