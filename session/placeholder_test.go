package session

import (
	"regexp"
	"testing"
)

func TestPlaceholderShape(t *testing.T) {
	tests := []struct {
		c    Credential
		want string
	}{
		{Credential{Name: "a", Preset: "anthropic"}, `^sk-ant-api03-agentvault-[0-9A-Za-z]{32}$`},
		{Credential{Name: "g", Preset: "github"}, `^ghp_agentvault-[0-9A-Za-z]{32}$`},
		{Credential{Name: "m", Preset: "mistral"}, `^agentvault-[0-9A-Za-z]{32}$`},
		{Credential{Name: "x"}, `^agentvault-[0-9A-Za-z]{32}$`},
		{Credential{Name: "f", Preset: "openai", Placeholder: "fixed-placeholder-1"}, `^fixed-placeholder-1$`},
	}
	for _, tt := range tests {
		got := Placeholder(tt.c)
		if !regexp.MustCompile(tt.want).MatchString(got) {
			t.Errorf("Placeholder(%+v) = %q, want %s", tt.c, got, tt.want)
		}
		if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(got) {
			t.Errorf("%q is not header/URL safe", got)
		}
	}
}

func TestPlaceholderUnique(t *testing.T) {
	seen := map[string]bool{}
	counts := map[byte]int{}
	const n = 2000
	for i := 0; i < n; i++ {
		p := Placeholder(Credential{Name: "x"})
		if seen[p] {
			t.Fatalf("placeholder repeated after %d draws", i)
		}
		seen[p] = true
		for j := len(PlaceholderMarker); j < len(p); j++ {
			counts[p[j]]++
		}
	}
	// All 62 symbols show up, none wildly over-represented (64000 draws,
	// about 1032 each; a modulo bias or a stuck byte would show).
	if len(counts) != 62 {
		t.Errorf("%d distinct characters, want 62", len(counts))
	}
	for c, k := range counts {
		if k < 800 || k > 1300 {
			t.Errorf("character %q drawn %d times", c, k)
		}
	}
}

func TestValidPlaceholder(t *testing.T) {
	for _, ok := range []string{"abcdefghijkl", "sk-ant-api03-x.y~z_", Placeholder(Credential{})} {
		if err := validPlaceholder(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "short", "has space inside", "slash/inside/xx", "percent%20xxxx", "ümlautsümlauts"} {
		if err := validPlaceholder(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
