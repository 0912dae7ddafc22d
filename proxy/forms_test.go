package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// goJSON is s as Go's encoding/json writes it (inside the quotes).
func goJSON(t *testing.T, s string, html bool) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

func upperHexEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+5 < len(b); i++ {
		if b[i] == '\\' && b[i+1] == 'u' {
			copy(b[i+2:i+6], strings.ToUpper(string(b[i+2:i+6])))
			i += 5
		} else if b[i] == '\\' {
			i++
		}
	}
	return string(b)
}

// TestJSONFormsCoverEncoders: whatever a common JSON encoder makes of a
// secret is one of its forms, in either hex case.
func TestJSONFormsCoverEncoders(t *testing.T) {
	secrets := []string{
		"ghp_underscore_token",
		"a&b<c>d/e\"f\\g",
		"tab\tctl\x01\x1f-end",
		"line\u2028sep\u2029x",
		"caf\u00e9-\U0001F511-key",
		"bad\xffutf8-value",
	}
	for _, s := range secrets {
		forms := map[string]bool{s: true}
		for _, f := range jsonForms(s) {
			forms[f] = true
		}
		want := map[string]string{
			"Go":           goJSON(t, s, true),
			"Go no HTML":   goJSON(t, s, false),
			"Go upper hex": upperHexEscapes(goJSON(t, s, true)),
			"every punct":  punctEscaped(s),
		}
		if utf8.ValidString(s) { // a JavaScript string holds no invalid UTF-8
			want["JSON.stringify"] = jsStringify(s)
		}
		for who, w := range want {
			if !forms[w] {
				t.Errorf("%q: %s writes %q, not among the forms", s, who, w)
			}
		}
	}
	if got := jsonEscape("a_b/c\u00e9", jsonStyle{ascii: true, slash: true}); got != `a_b\/c\u00e9` {
		t.Errorf("PHP style: %q", got)
	}
}

// punctEscaped writes every ASCII character but letters and digits as \u00xx
// and every other character as \uXXXX (by hand, to check the punct style).
func punctEscaped(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\ufffd") {
		switch {
		case r < 0x80 && isAlnum(byte(r)):
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+r>>10, 0xDC00+r&0x3FF)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// jsStringify is JSON.stringify's escaping (ECMA-262 QuoteJSONString) of a
// valid UTF-8 string.
func jsStringify(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
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
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestPercentFormsBothHexCases(t *testing.T) {
	forms := strings.Join(percentForms("a/b c+d"), " ")
	for _, want := range []string{"a%2Fb+c%2Bd", "a%2fb+c%2bd", "a%2Fb%20c+d", "a%2fb%20c+d"} {
		if !strings.Contains(" "+forms+" ", " "+want+" ") {
			t.Errorf("%q missing from %q", want, forms)
		}
	}
}

// TestInjectedValuesNeedOnlyEncodedForms: the forms of "user:secret" that
// hold the raw secret are dropped (the secret's own needle finds them), the
// whole base64 of the Basic header's credentials is kept, and a header
// format without the secret adds nothing.
func TestInjectedValuesNeedOnlyEncodedForms(t *testing.T) {
	const s = "tok3n-value-0123"
	c, err := compileCredential(&Credential{Name: "a", Placeholder: "PH", Hosts: []string{"a.test"}, Secret: staticSecret(s),
		Inject: []Injection{{Type: "basic", Username: "bob"}, {Type: "header", Name: "X-Static", Format: "fixed"}}})
	if err != nil {
		t.Fatal(err)
	}
	m := newMatcher([]*credential{c}, reflectForms)
	var got []string
	for _, n := range m.needles {
		got = append(got, string(n.b))
		if string(n.b) != s && strings.Contains(string(n.b), s) {
			t.Errorf("needle %q holds the raw secret: redundant", n.b)
		}
		if string(n.b) == "fixed" {
			t.Error("a header format without the secret became a needle")
		}
	}
	if m.findString("Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("bob:"+s))) == nil {
		t.Errorf("needles %q do not find base64(user:secret)", got)
	}
}
