package session

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	"github.com/agentvault/agentvault/config"
)

// tok draws a test token: prefix + n characters of alphabet. A short draw
// may miss a character class, which narrows the placeholder's alphabet and
// lengthens it; cases whose expected length depends on the full alphabet
// put one of each class in the prefix.
func tok(prefix, alphabet string, n int) string { return prefix + randomFrom(alphabet, n) }

const (
	b64url = base62 + "-_"
	hexLow = "0123456789abcdef"
)

var testJWT = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
	base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u1","exp":4102444800}`)) + "."

// The formats SDKs and secret scanners check: each placeholder must match
// the same pattern as the real token, start its random part with the marker
// and keep the length where the token has room for 128 random bits.
func TestPlaceholderKeepsFormat(t *testing.T) {
	tests := []struct {
		name     string
		real     string
		preset   string
		want     string // the format, as a scanner or an SDK writes it
		head     string // copied verbatim; the marker follows
		marker   string
		sameLen  bool
		noLetter bool // the token has no letters, so neither may the placeholder
	}{
		{"anthropic", tok("sk-ant-api03-", b64url, 93) + "AA", "anthropic", `^sk-ant-api03-[A-Za-z0-9_-]{95}$`, "sk-ant-api03-", PlaceholderMarker, true, false},
		{"anthropic oauth", tok("sk-ant-oat01-", b64url, 95), "", `^sk-ant-oat01-[A-Za-z0-9_-]{95}$`, "sk-ant-oat01-", PlaceholderMarker, true, false},
		{"github classic", tok("ghp_", base62, 36), "github", `^ghp_[A-Za-z0-9]{36}$`, "ghp_", PlaceholderMarker, true, false},
		{"github fine-grained", tok("github_pat_", base62, 22) + "_" + tok("", base62, 59), "", `^github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}$`, "github_pat_", PlaceholderMarker, true, false},
		{"gitlab short", tok("glpat-a1B", base62, 17), "gitlab", `^glpat-[A-Za-z0-9]{32}$`, "glpat-", PlaceholderMarker, false, false},
		{"slack bot", "xoxb-" + tok("", digits, 10) + "-" + tok("", digits, 13) + "-" + tok("", base62, 24), "slack", `^xoxb-[0-9]{10}-[0-9]{13}-[A-Za-z0-9]{24}$`, "xoxb-", "", true, false},
		{"openai project", tok("sk-proj-", b64url, 156), "openai", `^sk-proj-[A-Za-z0-9_-]{156}$`, "sk-proj-", PlaceholderMarker, true, false},
		{"huggingface", tok("hf_", lower+upper, 34), "huggingface", `^hf_[A-Za-z]{34}$`, "hf_", PlaceholderMarker, true, false},
		{"google", tok("AIza", b64url, 35), "gemini", `^AIza[A-Za-z0-9_-]{35}$`, "AIza", PlaceholderMarker, true, false},
		{"openrouter hex", tok("sk-or-v1-", hexLow, 64), "openrouter", `^sk-or-v1-[0-9a-f]{64}$`, "sk-or-v1-", markerDigits, true, false},
		{"upper hex", tok("", "0123456789ABCDEF", 48), "", `^[0-9A-F]{48}$`, "", markerDigits, true, false},
		{"upper case only", tok("", upper+digits, 40), "", `^[0-9A-Z]{40}$`, "", markerUpper, true, false},
		{"digits only", tok("", digits, 60), "", `^[0-9]{60}$`, "", markerDigits, true, true},
		{"unknown prefix is not copied", "Ab3_" + tok("", base62, 40), "", `^[A-Za-z0-9_]{44}$`, "", PlaceholderMarker, true, false},
		{"standard base64", tok("", base62, 40) + "+/+=", "", `^[A-Za-z0-9]{44}$`, "", PlaceholderMarker, true, false},
		{"dots stay", tok("", base62, 30) + "." + tok("", base62, 30), "", `^[A-Za-z0-9]{30}\.[A-Za-z0-9]{30}$`, "", PlaceholderMarker, true, false},
		{"jwt", testJWT + tok("", b64url, 43), "", `^` + regexp.QuoteMeta(testJWT) + `[A-Za-z0-9_-]{43}$`, testJWT, PlaceholderMarker, true, false},
		{"password with symbols", "p@ss w0rd!", "", `^agentvault[A-Za-z0-9]{32}$`, "", PlaceholderMarker, false, false},
		{"json", `{"access_key_id":"AKIA"}`, "", `^agentvault[A-Za-z0-9]{32}$`, "", PlaceholderMarker, false, false},
		{"preset prefix for a non-token", "p@ss w0rd!", "npm", `^npm_agentvault[A-Za-z0-9]{32}$`, "npm_", PlaceholderMarker, false, false},
		{"short password", "hunter22", "", `^agentvault[a-z0-9]{25}$`, "", PlaceholderMarker, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 {
				got := Placeholder(config.Credential{Name: "c", Preset: tt.preset}, tt.real)
				if !regexp.MustCompile(tt.want).MatchString(got) {
					t.Fatalf("placeholder %q does not match %s", got, tt.want)
				}
				if !strings.HasPrefix(got, tt.head+tt.marker) {
					t.Fatalf("placeholder %q does not start with %q", got, tt.head+tt.marker)
				}
				if tt.name == "slack bot" && !strings.Contains(got, "-"+PlaceholderMarker) {
					t.Fatalf("slack placeholder %q has no marker in its random part", got)
				}
				if tt.sameLen != (len(got) == len(tt.real)) {
					t.Fatalf("placeholder length %d, real %d (same length wanted: %v)", len(got), len(tt.real), tt.sameLen)
				}
				if tt.noLetter && strings.ContainsAny(got, lower+upper) {
					t.Fatalf("placeholder %q has letters the token's alphabet lacks", got)
				}
				if got == tt.real || strings.Contains(got, tt.real) || strings.Contains(tt.real, got) {
					t.Fatal("placeholder holds the real value")
				}
			}
		})
	}
}

// A placeholder must not tell the child any character of the secret's
// random part: position by position it agrees with the real value no more
// often than a random draw from the alphabet would.
func TestPlaceholderCopiesNothing(t *testing.T) {
	reals := []string{
		tok("ghp_", base62, 36),
		"xoxb-" + tok("", digits, 10) + "-" + tok("", digits, 13) + "-" + tok("", base62, 24),
		tok("sk-or-v1-", hexLow, 64),
		tok("", b64url, 64),
		testJWT + tok("", b64url, 86),
	}
	for _, real := range reals {
		tp, _ := knownPrefix(real)
		head := tp.prefix
		if h, _, ok := splitJWT(real); ok {
			head = h
		}
		same, total := 0, 0
		for range 200 {
			p := Placeholder(config.Credential{Name: "c"}, real)
			for i := len(head) + len(PlaceholderMarker); i < len(p); i++ {
				if p[i] != '-' && p[i] == real[i] {
					same++
				}
				total++
			}
		}
		// At most 1/10 for digits; copying would give 1.
		if rate := float64(same) / float64(total); rate > 0.15 {
			t.Errorf("%.12s...: %.2f of the placeholder's characters equal the secret's", real, rate)
		}
	}
}

func TestPlaceholderConfigured(t *testing.T) {
	c := config.Credential{Name: "f", Preset: "openai", Placeholder: "fixed-placeholder-1"}
	if got := Placeholder(c, "sk-proj-whatever"); got != "fixed-placeholder-1" {
		t.Errorf("configured placeholder replaced by %q", got)
	}
}

// Every character of the random part is uniform over its alphabet: a modulo
// bias or a stuck byte would show.
func TestPlaceholderUnique(t *testing.T) {
	seen := map[string]bool{}
	counts := map[byte]int{}
	const n = 2000
	for i := 0; i < n; i++ {
		p := Placeholder(config.Credential{Name: "x"}, "")
		if seen[p] {
			t.Fatalf("placeholder repeated after %d draws", i)
		}
		seen[p] = true
		for j := len(PlaceholderMarker); j < len(p); j++ {
			counts[p[j]]++
		}
	}
	// 64000 draws, about 1032 each.
	if len(counts) != 62 {
		t.Errorf("%d distinct characters, want 62", len(counts))
	}
	for c, k := range counts {
		if k < 800 || k > 1300 {
			t.Errorf("character %q drawn %d times", c, k)
		}
	}
}

func TestPartAlphabet(t *testing.T) {
	tests := []struct{ part, want string }{
		{"0123456789abcdef0123", hexLow},
		{"0123456789ABCDEF0123", "0123456789ABCDEF"},
		{"0123abcdef", digits + lower},  // too short to call hex
		{"abcdefabcdefabcdefab", lower}, // no digit: not hex
		{"aZ9-_", base62[:10] + lower + upper + "-_"},
		{"+/=", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := partAlphabet(tt.part); got != tt.want {
			t.Errorf("partAlphabet(%q) = %q, want %q", tt.part, got, tt.want)
		}
	}
}

// A generated placeholder must pass the check a configured one does.
func TestGeneratedPlaceholderValid(t *testing.T) {
	for _, real := range []string{"", "sk-ant-api03-" + randomFrom(base62, 40), testJWT, "not a token at all"} {
		if p := Placeholder(config.Credential{Name: "c"}, real); config.ValidPlaceholder(p) != nil {
			t.Errorf("placeholder %q for %q: %v", p, real, config.ValidPlaceholder(p))
		}
	}
}
