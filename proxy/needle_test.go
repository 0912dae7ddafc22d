package proxy

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
)

// TestNeedleInIsContains: the anchored search finds exactly what
// bytes.Contains finds: at the edges, next to near misses, in text full of
// the anchor byte (where it hands over to bytes.Index), and in random text
// over a small alphabet, where partial matches abound.
func TestNeedleInIsContains(t *testing.T) {
	mk := func(s string) *needle { return &needle{b: []byte(s), anchor: anchorOf([]byte(s))} }
	for _, tc := range []struct{ needle, text string }{
		{"real-secret-value-42", "real-secret-value-42"},
		{"real-secret-value-42", "xreal-secret-value-42"},
		{"real-secret-value-42", "real-secret-value-42x"},
		{"real-secret-value-42", "real-secret-value-4"},
		{"real-secret-value-42", "eal-secret-value-42"},
		{"real-secret-value-42", strings.Repeat("real-secret-value-41 ", 100) + "real-secret-value-42"},
		{"real-secret-value-42", strings.Repeat("4", 5000) + "real-secret-value-42"},
		{"real-secret-value-42", strings.Repeat("4", 5000)},
		{"Q", "abcQ"},
		{"Q", ""},
		{"ab", "a"},
		{`real\u002dsecret`, `"real\u002dsecret"`},
	} {
		n := mk(tc.needle)
		if got, want := n.in([]byte(tc.text)), strings.Contains(tc.text, tc.needle); got != want {
			t.Errorf("%q in %.40q...: %v, want %v", tc.needle, tc.text, got, want)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		alpha := "ab-4"[:1+rng.Intn(4)]
		gen := func(n int) []byte {
			b := make([]byte, n)
			for j := range b {
				b[j] = alpha[rng.Intn(len(alpha))]
			}
			return b
		}
		nb, text := gen(1+rng.Intn(6)), gen(rng.Intn(200))
		n := mk(string(nb))
		if got, want := n.in(text), bytes.Contains(text, nb); got != want {
			t.Fatalf("%q in %q: %v, want %v", nb, text, got, want)
		}
	}
}
