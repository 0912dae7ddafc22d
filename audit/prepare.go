package audit

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// view is a Summary whose strings are masked and safe to print.
type view struct {
	Summary
	CommandLine string // shell-quoted, masked
}

// prepare masks every outside string first (so no later quoting,
// escaping or truncation can split a secret out of the mask's reach) and
// then escapes control characters, so a hostile host name or argument cannot
// drive the terminal the summary is printed on.
func prepare(s Summary, mask func(string) string) view {
	m := func(x string) string {
		if mask != nil {
			x = mask(x)
		}
		return x
	}
	c := func(x string) string { return clean(m(x)) }
	mapKeys := func(in map[string]int) map[string]int {
		out := make(map[string]int, len(in))
		for k, v := range in {
			out[c(k)] += v
		}
		return out
	}
	list := func(in []string) []string {
		out := make([]string, len(in))
		for i, x := range in {
			out[i] = c(x)
		}
		return out
	}

	v := view{Summary: s}
	v.Session = c(s.Session)
	masked := make([]string, len(s.Command))
	for i, a := range s.Command {
		masked[i] = m(a)
	}
	v.CommandLine = c(shellJoin(masked))
	v.Command = list(masked)
	v.Warnings = list(s.Warnings)
	v.Notes = list(s.Notes)
	v.Hosts = make([]HostRow, len(s.Hosts))
	for i, h := range s.Hosts {
		h.Host = c(h.Host)
		h.Credentials = list(h.Credentials)
		h.Statuses = mapKeys(h.Statuses)
		h.Actions = mapKeys(h.Actions)
		v.Hosts[i] = h
	}
	return v
}

// clean escapes what a terminal or a Markdown viewer could act on instead
// of showing: control characters (C0, DEL, C1), bidirectional overrides
// and invalid UTF-8.
func clean(s string) string {
	if !needsEscape(s) {
		return s
	}
	return escape(s, nil)
}

// escape writes s with every unsafe rune and invalid byte as \xHH or \uHHHH;
// special, if not nil, may write a rune its own way first (returning true).
func escape(s string, special func(b *strings.Builder, r rune) bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case special != nil && special(&b, r):
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if unsafeRune(r) {
			return true
		}
	}
	return false
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}

// shellJoin quotes args the way a POSIX shell would need them typed, so the
// echoed command line can be pasted back. Arguments with control characters
// or invalid UTF-8 use bash's $'...' so they stay visible and inert.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// ansiCQuote writes the runes bash's $'...' spells its own way.
func ansiCQuote(b *strings.Builder, r rune) bool {
	switch r {
	case '\n':
		b.WriteString(`\n`)
	case '\t':
		b.WriteString(`\t`)
	case '\\', '\'':
		b.WriteByte('\\')
		b.WriteRune(r)
	default:
		return false
	}
	return true
}

func shellQuote(a string) string {
	if a == "" {
		return "''"
	}
	if needsEscape(a) {
		return "$'" + escape(a, ansiCQuote) + "'"
	}
	safe := true
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("@%+=:,./-_", r)) {
			safe = false
			break
		}
	}
	if safe {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}
