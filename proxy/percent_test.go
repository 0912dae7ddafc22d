package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFullPercentForms(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"AB", "%41%42"},
		{"a/ÿ", "%61%2F%C3%BF"},
		{"key-Z9", "%6B%65%79%2D%5A%39"},
	} {
		if got := fullPercentForms(tc.in); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestFoldNeedle: a needle made only of escapes matches its hex digits in
// any case, in a body, a header value and a redaction; others match
// exactly as before.
func TestFoldNeedle(t *testing.T) {
	c := testCred("a", "key-", "PH", "a.test")
	n := newNeedle([]byte("%6B%65%79%2D"), c)
	if !n.fold || n.anchor != 0 {
		t.Fatalf("fold %v anchor %d", n.fold, n.anchor)
	}
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"x=%6B%65%79%2D;", true},
		{"x=%6b%65%79%2d;", true},
		{"x=%6b%65%79%2D;", true},
		{"x=%6B%65%79%2E;", false},
		{"x=%6B%65%79", false},
		{strings.Repeat("%", 5000) + "%6b%65%79%2D", true},
	} {
		if got := n.in([]byte(tc.text)); got != tc.want {
			t.Errorf("%.30q: %v, want %v", tc.text, got, tc.want)
		}
		m := &matcher{needles: []needle{n}}
		if got := m.findString(tc.text) != nil; got != tc.want {
			t.Errorf("findString %.30q: %v, want %v", tc.text, got, tc.want)
		}
	}
	m := &matcher{needles: []needle{n}}
	if got, hit := m.redact([]byte("a %6b%65%79%2d b %6B%65%79%2D c")); !hit || string(got) != "a PH b PH c" {
		t.Errorf("redact: %q %v", got, hit)
	}
	for _, s := range []string{"%2", "%2F%", "%zz%41", "abc", "%41%42x"} {
		if allEscapes([]byte(s)) {
			t.Errorf("%q taken for escapes only", s)
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

// TestLeakGuardPercentEscapes: a secret with every byte escaped (in any hex
// case) or with escapes mixing encoded and plain characters is refused in
// the path, query, a header, a small body and a gzip body, and stopped in a
// streamed body read one byte at a time.
func TestLeakGuardPercentEscapes(t *testing.T) {
	const s = "pct-Secret_0123456789/x y"
	full := fullPercentForms(s)[0]
	forms := map[string]string{
		"every byte, upper hex":    full,
		"every byte, lower hex":    strings.ToLower(full),
		"every byte, mixed hex":    mixedHexCase(full),
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
		for _, ch := range []string{"path", "query", "header", "small body", "streamed body", "gzip body"} {
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
				case "gzip body":
					gz := gzipped(t, "d="+form+"&more")
					req.Header.Set("Content-Encoding", "gzip")
					req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(gz)), int64(len(gz))
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
				if string(n.b) == f && n.fold {
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
		if found != 1 {
			t.Errorf("%q: the every-byte escape is not a case-folding needle", s)
		}
	}
	m := newMatcher([]*credential{testCred("a", "sk-ant-api03-Qw3rTy_uIop", "PH", "a.test")}, leakForms)
	if m.hold != tokenClass {
		t.Error("an API key's class is no longer the token class")
	}
}

// mixedHexCase lower-cases every other hex letter.
func mixedHexCase(s string) string {
	b := []byte(s)
	for i, k := 0, 0; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'F' {
			if k%2 == 0 {
				b[i] += 'a' - 'A'
			}
			k++
		}
	}
	return string(b)
}
