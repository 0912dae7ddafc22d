package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFullPercentForms(t *testing.T) {
	for _, tc := range []struct{ in, upper, lower string }{
		{"AB", "%41%42", "%41%42"},
		{"a/ÿ", "%61%2F%C3%BF", "%61%2f%c3%bf"},
		{"key-Z9", "%6B%65%79%2D%5A%39", "%6b%65%79%2d%5a%39"},
	} {
		got := fullPercentForms(tc.in)
		if len(got) != 2 || got[0] != tc.upper || got[1] != tc.lower {
			t.Errorf("%q: %q, want %q and %q", tc.in, got, tc.upper, tc.lower)
		}
	}
}

func TestUnescapePercent(t *testing.T) {
	for _, tc := range []struct {
		in   string
		plus bool
		want string
	}{
		{"no escapes", false, "<nil>"},
		{"a%41b%2fc", false, "aAb/c"},
		{"a+b%20c", false, "a+b c"},
		{"a+b%20c", true, "a b c"},
		{"bad %zz and %4", false, "bad %zz and %4"},
		{"%%41", false, "%A"},
		{"end%4", false, "end%4"},
		{"end%41", false, "endA"},
	} {
		got := unescapePercent([]byte(tc.in), tc.plus)
		s := string(got)
		if got == nil {
			s = "<nil>"
		}
		if s != tc.want {
			t.Errorf("%q plus=%v: %q, want %q", tc.in, tc.plus, s, tc.want)
		}
	}
}

// mixedEscapes writes s with every other byte escaped, in the given hex.
func mixedEscapes(s, hex string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if i%2 == 0 {
			b.WriteByte('%')
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&15])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// TestLeakGuardPercentEscapes: a secret with every byte escaped (either hex
// case) is refused in the path, query, a header and a small body, and
// stopped in a streamed body; one with escapes mixing encoded and plain
// characters is refused wherever the guard reads the text whole (the path,
// query, a header, a small body).
func TestLeakGuardPercentEscapes(t *testing.T) {
	const s = "pct-Secret_0123456789/x y"
	full := fullPercentForms(s)
	forms := map[string]string{
		"every byte, upper hex":    full[0],
		"every byte, lower hex":    full[1],
		"every other byte":         mixedEscapes(s, "0123456789ABCDEF"),
		"every other byte, lower":  mixedEscapes(s, "0123456789abcdef"),
		"query form with plus":     strings.ReplaceAll(mixedEscapes(s, "0123456789ABCDEF"), "%20", "+"),
		"only the slash escaped":   strings.ReplaceAll(strings.ReplaceAll(s, "/", "%2f"), " ", "%20"),
		"letters escaped, / plain": "%70%63%74-%53ecret_0123456789/x%20y",
	}
	p := &Proxy{policy: &policy{creds: []*credential{testCred("a", s, "PH-a", "a.test")}}}
	for name, form := range forms {
		if strings.Contains(form, s) {
			t.Fatalf("%s: holds the raw secret", name)
		}
		mixed := !strings.HasPrefix(name, "every byte")
		for _, ch := range []string{"path", "query", "header", "small body", "streamed body"} {
			if ch == "streamed body" && mixed {
				continue // mixed escapes in a streamed body: a known gap (docs/security.md)
			}
			if ch == "path" && strings.Contains(form, "+") {
				continue // a '+' in a path is a plus
			}
			t.Run(name+"/"+ch, func(t *testing.T) {
				req, _ := http.NewRequest("POST", "https://b.test/upload", nil)
				switch ch {
				case "path":
					r, err := http.NewRequest("POST", "https://b.test/u/"+form, nil)
					if err != nil {
						t.Fatal(err)
					}
					req = r
				case "query":
					req.URL.RawQuery = "d=" + form
				case "header":
					req.Header.Set("X-Data", "v="+form)
				case "small body":
					req.Body, req.ContentLength = io.NopCloser(strings.NewReader("d="+form)), int64(len(form)+2)
				case "streamed body":
					req.Body, req.ContentLength = io.NopCloser(iotest.OneByteReader(strings.NewReader("d="+form+"&more"))), -1
				}
				ex := &exchange{}
				res := p.checkLeak(req, "b.test", 443, ex)
				if ch == "streamed body" {
					got, err := io.ReadAll(req.Body)
					if res != nil || err != errLeak || strings.Contains(string(got), form) {
						t.Fatalf("streamed form not stopped: err=%v passed %q", err, got)
					}
					return
				}
				if res == nil || res.StatusCode != http.StatusForbidden || ex.rec.Action != ActionLeakBlocked {
					t.Fatalf("not refused: %+v", ex.rec)
				}
			})
		}
	}
}

// TestFullPercentFormsInHoldback: the every-byte escapes lie in the token
// class and within the hold-back cap, so a streamed one split across reads
// is still seen whole, and the class of an ordinary key stays token.
func TestFullPercentFormsInHoldback(t *testing.T) {
	for _, s := range []string{"sk-ant-api03-Qw3rTy_uIop", "p@ss w0rd!{x}", "a\nb-multi-line"} {
		m := newMatcher([]*credential{testCred("a", s, "PH", "a.test")}, leakForms)
		found := 0
		for _, f := range fullPercentForms(s) {
			for _, n := range m.needles {
				if string(n.b) == f {
					found++
				}
			}
			for i := 0; i < len(f); i++ {
				if !tokenClass[f[i]] {
					t.Fatalf("%q: byte %q outside the token class", f, f[i])
				}
			}
			if len(f) > m.maxLen {
				t.Fatalf("%q: %d bytes, cap %d", f, len(f), m.maxLen)
			}
		}
		if found != 2 {
			t.Errorf("%q: %d of the 2 every-byte escapes are needles", s, found)
		}
	}
	m := newMatcher([]*credential{testCred("a", "sk-ant-api03-Qw3rTy_uIop", "PH", "a.test")}, leakForms)
	if m.hold != tokenClass {
		t.Error("an API key's class is no longer the token class")
	}
}
