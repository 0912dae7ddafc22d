package session

import (
	"crypto/rand"
	"errors"
)

const (
	// PlaceholderMarker follows a preset's prefix, or starts a placeholder
	// without one, so a placeholder is recognisable in the agent's logs.
	PlaceholderMarker = "agentvault-"
	placeholderRandom = 32 // base62 characters: about 190 bits
	base62            = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Placeholder returns the value the child sees instead of c's secret: the
// configured placeholder, else "<preset prefix>agentvault-<32 random base62>".
// Call it once per credential per session. The result only holds letters,
// digits, '-' and '_', so it is safe in headers, URLs and shell variables.
func Placeholder(c Credential) string {
	if c.Placeholder != "" {
		return c.Placeholder
	}
	prefix := ""
	if p, ok := LookupPreset(c.Preset); ok {
		prefix = p.PlaceholderPrefix
	}
	return prefix + PlaceholderMarker + randomBase62(placeholderRandom)
}

// randomBase62 draws from crypto/rand with rejection sampling, so every
// character is uniform (248 = 4*62 is the largest multiple below 256).
func randomBase62(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	// Each round keeps 97% of the bytes; the bound only guards a broken RNG.
	for round := 0; len(out) < n; round++ {
		if round == 64 {
			panic("session: crypto/rand keeps returning bytes >= 248")
		}
		rand.Read(buf) // never fails since Go 1.24 (it aborts the process instead)
		for _, b := range buf {
			if b < 248 && len(out) < n {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out)
}

// validPlaceholder checks a configured placeholder: long enough not to occur
// by accident in traffic, and made of URL- and header-safe characters.
func validPlaceholder(s string) error {
	if len(s) < 12 || len(s) > 512 {
		return errors.New("a placeholder needs 12 to 512 characters, so it cannot occur by accident")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == '~':
		default:
			return errors.New("a placeholder may only hold letters, digits, '-', '_', '.' and '~'")
		}
	}
	return nil
}
