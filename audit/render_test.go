package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentvault/agentvault/proxy"
	"github.com/charmbracelet/lipgloss"
)

// fixture is a session with every kind of row and warning.
func fixture() Summary {
	var c Collector
	add := func(n int, r proxy.Record) {
		for i := 0; i < n; i++ {
			c.Add(r)
		}
	}
	add(17, rec("inject", "api.anthropic.com", 443, 200, cred("anthropic"), bytesIO(5123, 20480)))
	add(2, rec("inject", "api.github.com", 443, 401, cred("github"), retried))
	add(3, rec("deny", "paste.pastebin.com", 443, 403, errText("egress deny pastebin")))
	add(1, rec("leak_blocked", "evil.test", 8443, 403, cred("github")))
	add(1, rec("tunnel", "registry.npmjs.org", 443, 200, bytesIO(1000, 50<<20)))
	add(1, rec("inject", "api.openai.com", 443, 101, cred("openai"), bytesIO(75_000, 3_000), lasted(12*time.Second)))
	add(1, rec("pass", "a-very-long-host-name.somewhere.example.internal.corp.example.com", 443, 200, redacted, cred("x")))
	return c.Summary(Summary{
		Session:    "av-7f3a2c9e",
		Command:    []string{"claude", "-p", "hello world"},
		Start:      t0,
		Duration:   62 * time.Second,
		ExitStatus: 1,
		Warnings:   []string{"backend vault: token renewal failed"},
		Notes:      []string{"the session CA is not name-constrained"},
	})
}

var allFormats = []struct {
	name string
	opts Options
}{
	{"pretty-nocolor", Options{Format: "pretty", Color: ColorNone}},
	{"pretty-ansi", Options{Format: "pretty", Color: ColorANSI}},
	{"pretty-truecolor", Options{Format: "pretty", Color: ColorTrueColor}},
	{"plain", Options{Format: "plain"}},
	{"table", Options{Format: "table"}},
	{"markdown", Options{Format: "markdown"}},
	{"json", Options{Format: "json"}},
}

func render(t *testing.T, s Summary, o Options) string {
	t.Helper()
	var buf bytes.Buffer
	if err := RenderWith(&buf, s, o); err != nil {
		t.Fatalf("%s: %v", o.Format, err)
	}
	return buf.String()
}

// stripANSI removes SGR sequences so content checks see the text.
var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

func TestRenderShowsHostsAndWarnings(t *testing.T) {
	s := fixture()
	for _, f := range allFormats {
		t.Run(f.name, func(t *testing.T) {
			out := render(t, s, f.opts)
			if f.opts.Format == "json" {
				var js jsonSummary
				if err := json.Unmarshal([]byte(out), &js); err != nil {
					t.Fatalf("not one JSON object: %v\n%s", err, out)
				}
				if strings.Count(strings.TrimSpace(out), "\n") != 0 {
					t.Errorf("JSON spans several lines")
				}
				if js.Session != s.Session || js.ExitStatus == nil || *js.ExitStatus != 1 ||
					js.CommandLine != "claude -p 'hello world'" || js.DurationMS != 62000 {
					t.Errorf("header: %+v", js)
				}
				if len(js.Hosts) != len(s.Hosts) || !reflect.DeepEqual(js.Warnings, s.Warnings) ||
					!reflect.DeepEqual(js.Notes, s.Notes) {
					t.Errorf("json body: %+v", js)
				}
				for i, h := range js.Hosts {
					w := s.Hosts[i]
					if want := float64(w.WebSocketTime / time.Millisecond); h.WebSocketMS != want {
						t.Errorf("host %d: websocket_ms %v, want %v", i, h.WebSocketMS, want)
					}
					if h.Host != w.Host || h.Port != w.Port || h.Requests != w.Requests || h.Injected != w.Injected ||
						!reflect.DeepEqual(h.Statuses, w.Statuses) || h.RespBytes != w.RespBytes {
						t.Errorf("host %d: %+v, want %+v", i, h, w)
					}
				}
				return
			}
			text := sgr.ReplaceAllString(out, "")
			want := []string{"av-7f3a2c9e", "exit 1", "1m2s", "api.anthropic.com", "api.github.com",
				"paste.pastebin.com", "evil.test:8443", "registry.npmjs.org", "anthropic"}
			if f.opts.Format == "markdown" {
				want = []string{"`av-7f3a2c9e`", "**Exit status:** 1", "1m2s", "api.anthropic.com",
					"api.github.com", "paste.pastebin.com", "evil.test:8443", "registry.npmjs.org", "anthropic",
					"2xx: 17", "4xx: 2", "denied: 3", "blocked: 1", "ws: 1 (12s)", "50 MiB", "`claude -p 'hello world'`"}
			} else {
				want = append(want, "2xx:17", "4xx:2", "denied:3", "blocked:1", "ws:1 (12s)", "50M", "$ claude -p 'hello world'")
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			for _, w := range s.Warnings {
				flat := strings.Join(strings.Fields(text), " ")
				if f.opts.Format == "markdown" {
					w = mdEscape(w)
				}
				if !strings.Contains(flat, w) {
					t.Errorf("output lacks warning %q:\n%s", w, text)
				}
			}
			if !strings.Contains(text, "not name-constrained") {
				t.Errorf("output lacks the note:\n%s", text)
			}
		})
	}
}

func TestRenderEscapes(t *testing.T) {
	s := fixture()
	for _, f := range allFormats {
		t.Run(f.name, func(t *testing.T) {
			out := render(t, s, f.opts)
			hasEsc := strings.Contains(out, "\x1b")
			wantEsc := f.opts.Color == ColorANSI || f.opts.Color == ColorTrueColor
			if hasEsc != wantEsc {
				t.Errorf("escape codes: %v, want %v:\n%q", hasEsc, wantEsc, out)
			}
		})
	}
}

func TestNoColorEnv(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	for _, c := range []Color{ColorAuto, ColorANSI, ColorANSI256, ColorTrueColor} {
		out := render(t, fixture(), Options{Format: "pretty", Color: c})
		if strings.Contains(out, "\x1b") {
			t.Errorf("color %d: NO_COLOR set but output has escapes", c)
		}
	}
}

func TestColorAutoOnBufferIsPlain(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	t.Setenv("CLICOLOR_FORCE", "")
	var buf bytes.Buffer
	if err := Render(&buf, fixture(), "pretty", nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "\x1b") {
		t.Error("pretty into a non-terminal detected color")
	}
}

func TestColorProfiles(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	for color, wantEscapes := range map[Color]bool{ColorNone: false, ColorANSI: true, ColorANSI256: true, ColorTrueColor: true} {
		out := prettyStyles(&bytes.Buffer{}, color).bad.Render("x")
		if got := strings.Contains(out, "\x1b["); got != wantEscapes {
			t.Errorf("color %v: %q, want escapes: %v", color, out, wantEscapes)
		}
	}
	t.Setenv("NO_COLOR", "1")
	if out := prettyStyles(&bytes.Buffer{}, ColorTrueColor).bad.Render("x"); strings.Contains(out, "\x1b") {
		t.Errorf("NO_COLOR: %q", out)
	}
}

func TestPrettyFits80Columns(t *testing.T) {
	s := fixture()
	s.Command = append(s.Command, strings.Repeat("very-long-argument ", 10))
	s.Warnings = append(s.Warnings, strings.Repeat("word ", 40)+strings.Repeat("x", 120))
	s.Hosts[0].Statuses = map[string]int{"1xx": 1, "2xx": 1000, "3xx": 10, "4xx": 100, "5xx": 3, "denied": 5, "blocked": 1, "error": 2, "none": 4}
	for _, c := range []Color{ColorNone, ColorANSI} {
		out := render(t, s, Options{Format: "pretty", Color: c})
		for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if w := lipgloss.Width(line); w > DefaultWidth {
				t.Errorf("color %d line %d is %d columns: %q", c, i+1, w, line)
			}
		}
		if !strings.Contains(out, "…") {
			t.Error("nothing was truncated")
		}
	}
	// plain cuts nothing.
	out := render(t, s, Options{Format: "plain"})
	if !strings.Contains(out, "a-very-long-host-name.somewhere.example.internal.corp.example.com") ||
		!strings.Contains(out, strings.Repeat("x", 120)) {
		t.Error("plain truncated content")
	}
}

func TestMaskEverywhere(t *testing.T) {
	const secret = "s3cr'et|*`<x>"
	mask := func(s string) string { return strings.ReplaceAll(s, secret, "****") }
	s := fixture()
	s.Session = "av-" + secret
	s.Command = []string{"curl", "-H", "Authorization: Bearer " + secret, secret}
	s.Hosts[0].Host = secret + ".example.com"
	s.Hosts[0].Credentials = []string{"c-" + secret}
	s.Hosts[0].Statuses[secret] = 1
	s.Hosts[0].Actions[secret] = 1
	s.Warnings = append(s.Warnings, "token "+secret+" seen")
	s.Notes = append(s.Notes, "note "+secret)
	for _, f := range allFormats {
		t.Run(f.name, func(t *testing.T) {
			out := render(t, s, Options{Format: f.opts.Format, Color: f.opts.Color, Mask: mask})
			// Any fragment of the secret would betray it, however it was
			// quoted or escaped on the way.
			if strings.Contains(out, "s3cr") {
				t.Errorf("secret fragment in output:\n%s", out)
			}
			if !strings.Contains(out, "****") && !strings.Contains(out, `\*\*\*\*`) {
				t.Errorf("mask replacement missing:\n%s", out)
			}
		})
	}
	// Without the mask the test would catch the secret: it is really there.
	if out := render(t, s, Options{Format: "plain"}); !strings.Contains(out, "s3cr") {
		t.Fatal("fixture does not carry the secret")
	}
}

func TestControlCharactersAreEscaped(t *testing.T) {
	s := fixture()
	s.Hosts[0].Host = "evil\x1b[31m.test"
	s.Warnings = []string{"bell\a and \u202eoverride\x9b1m"}
	s.Command = []string{"echo", "a\nb\x1b"}
	for _, f := range allFormats {
		if f.opts.Color != ColorNone && f.opts.Format == "pretty" {
			continue // colored output has escapes of its own
		}
		t.Run(f.name, func(t *testing.T) {
			out := render(t, s, f.opts)
			for _, bad := range []string{"\x1b", "\a", "\u202e", "\u009b"} {
				if strings.Contains(out, bad) {
					t.Errorf("raw %q in output:\n%q", bad, out)
				}
			}
			if f.opts.Format != "json" && !strings.Contains(out, `\x1b`) {
				t.Errorf("escaped form missing:\n%s", out)
			}
		})
	}
	out := render(t, s, Options{Format: "plain"})
	if !strings.Contains(out, `$ echo $'a\nb\x1b'`) {
		t.Errorf("command not ANSI-C quoted:\n%s", out)
	}
}

func TestNoQueryStrings(t *testing.T) {
	var c Collector
	c.Add(rec("inject", "api.example.com", 443, 200, cred("c"), func(r *proxy.Record) { r.Path = "/v1/search" }))
	c.Add(rec("pass", "api.example.com", 443, 200, func(r *proxy.Record) { r.Path = "/static/app.js" }))
	s := c.Summary(Summary{Session: "av-q", Command: []string{"agent"}})
	query := regexp.MustCompile(`\?[^\s"]*=`)
	for _, f := range allFormats {
		out := render(t, s, f.opts)
		if query.MatchString(out) {
			t.Errorf("%s: query string in output:\n%s", f.name, out)
		}
	}
	// The log keeps the path exactly as the proxy gave it.
	e := NewEntry("s", 1, proxy.Record{Path: "/a%3Fb/c"})
	if e.Path != "/a%3Fb/c" {
		t.Errorf("path rewritten to %q", e.Path)
	}
}

func TestMarkdownStructure(t *testing.T) {
	s := fixture()
	s.Hosts[1].Host = "pipe|host_*x*"
	out := render(t, s, Options{Format: "markdown"})
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "### agentvault session `av-7f3a2c9e`") {
		t.Errorf("heading: %q", lines[0])
	}
	if !strings.HasSuffix(out, "\n") {
		t.Error("no final newline: appending to $GITHUB_STEP_SUMMARY would join lines")
	}
	var rows []string
	for _, l := range lines {
		if strings.HasPrefix(l, "| ") {
			rows = append(rows, l)
		}
	}
	if len(rows) != 2+len(s.Hosts) {
		t.Fatalf("%d table lines, want %d:\n%s", len(rows), 2+len(s.Hosts), out)
	}
	if rows[1] != "| --- | ---: | ---: | --- | --- | ---: | ---: |" {
		t.Errorf("delimiter row %q", rows[1])
	}
	for _, r := range rows {
		// Unescaped pipes delimit cells: 7 columns need 8.
		if n := strings.Count(r, "|") - strings.Count(r, `\|`); n != 8 {
			t.Errorf("row has %d cell borders: %q", n, r)
		}
	}
	if !strings.Contains(out, `pipe\|host\_\*x\*`) {
		t.Errorf("host not escaped:\n%s", out)
	}
	if !strings.Contains(out, "**Warnings**") || !strings.Contains(out, "- ⚠️ ") {
		t.Errorf("no warnings list:\n%s", out)
	}
}

func TestRenderManyHosts(t *testing.T) {
	var c Collector
	for i := 0; i < maxRows+10; i++ {
		c.Add(rec("pass", fmt.Sprintf("h%03d.test", i), 443, 200))
	}
	s := c.Summary(Summary{Session: "av-m"})
	for _, f := range []Format{FormatPlain, FormatMarkdown} {
		out := render(t, s, Options{Format: f})
		if !strings.Contains(out, "and 10 more hosts (10 requests)") || strings.Contains(out, "h059.test") {
			t.Errorf("%s: hosts not capped:\n%s", f, out)
		}
	}
	var js jsonSummary
	if err := json.Unmarshal([]byte(render(t, s, Options{Format: "json"})), &js); err != nil || len(js.Hosts) != maxRows+10 {
		t.Errorf("json must list every host: %d, %v", len(js.Hosts), err)
	}
}

func TestRenderEmptyAndUnknownExit(t *testing.T) {
	s := FromEntries(nil)
	if out := render(t, s, Options{Format: "plain"}); !strings.HasPrefix(out, "agentvault, 0s\n") {
		t.Errorf("plain header without a session:\n%s", out)
	}
	if out := render(t, s, Options{Format: "markdown"}); !strings.HasPrefix(out, "### agentvault\n") {
		t.Errorf("markdown heading without a session:\n%s", out)
	}
	for _, f := range allFormats {
		out := render(t, s, f.opts)
		if strings.Contains(out, "exit") && f.opts.Format != "json" {
			t.Errorf("%s: unknown exit status shown:\n%s", f.name, out)
		}
		if f.opts.Format == "json" {
			if !strings.Contains(out, `"exit_status":null`) || !strings.Contains(out, `"hosts":[]`) || !strings.Contains(out, `"command":[]`) {
				t.Errorf("json: %s", out)
			}
		} else if !strings.Contains(strings.ToLower(out), "no requests went through the proxy") {
			t.Errorf("%s: no empty-table message:\n%s", f.name, out)
		}
	}
}

func TestRenderFormats(t *testing.T) {
	tests := []struct {
		format  Format
		wantErr bool
		empty   bool
	}{
		{"off", false, true},
		{"OFF", false, true},
		{"auto", true, true},
		{"html", true, true},
		{"", true, true},
		{"Plain", false, false},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		err := Render(&buf, fixture(), tt.format, nil)
		if (err != nil) != tt.wantErr || (buf.Len() == 0) != tt.empty {
			t.Errorf("Render(%q): err %v, %d bytes", tt.format, err, buf.Len())
		}
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in              string
		want, auditWant Format
	}{
		{"auto", "auto", ""},
		{"pretty", "pretty", ""},
		{" Plain ", "plain", ""},
		{"markdown", "markdown", "markdown"},
		{"JSON", "json", "json"},
		{"off", "off", ""},
		{"table", "", "table"},
		{"md", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		got, err = ParseAuditFormat(tt.in)
		if got != tt.auditWant || (err != nil) != (tt.auditWant == "") {
			t.Errorf("ParseAuditFormat(%q) = %q, %v; want %q", tt.in, got, err, tt.auditWant)
		}
	}
}

func TestRenderAudit(t *testing.T) {
	var entries []Entry
	for i, s := range []string{"av-1", "av-2", "av-1"} {
		r := rec("inject", "api.github.com", 443, 200, cred("github"), at(time.Duration(i)*time.Second))
		entries = append(entries, NewEntry(s, int64(i+1), r))
	}
	var buf bytes.Buffer
	if err := RenderAudit(&buf, entries, "json", nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d JSON lines, want one per session:\n%s", len(lines), buf.String())
	}
	for i, want := range []struct {
		session  string
		requests int
	}{{"av-1", 2}, {"av-2", 1}} {
		var js jsonSummary
		if err := json.Unmarshal([]byte(lines[i]), &js); err != nil {
			t.Fatal(err)
		}
		if js.Session != want.session || len(js.Hosts) != 1 || js.Hosts[0].Requests != want.requests || js.ExitStatus != nil {
			t.Errorf("line %d: %+v", i, js)
		}
	}
	buf.Reset()
	if err := RenderAudit(&buf, entries, "table", nil); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "av-1") || !strings.Contains(out, "av-2") || strings.Contains(out, "\x1b") {
		t.Errorf("table:\n%s", out)
	}
	if err := RenderAudit(&buf, entries, "pretty", nil); err == nil {
		t.Error("audit accepted format pretty")
	}
	buf.Reset()
	if err := RenderAudit(&buf, nil, "markdown", nil); err != nil || !strings.Contains(buf.String(), "No requests") {
		t.Errorf("empty log: %v\n%s", err, buf.String())
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"claude", "claude"},
		{"--model=opus-4.1", "--model=opus-4.1"},
		{"a/b_c@d%e+f,g:h", "a/b_c@d%e+f,g:h"},
		{"", "''"},
		{"hello world", "'hello world'"},
		{"it's", `'it'\''s'`},
		{"$HOME", "'$HOME'"},
		{"a\nb", `$'a\nb'`},
		{"tab\there's", `$'tab\there\'s'`},
		{"esc\x1b", `$'esc\x1b'`},
		{"bad\xffutf8", `$'bad\xffutf8'`},
		{"rtl\u202e", `$'rtl\u202e'`},
		{"héllo", "'héllo'"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"api.github.com", "api.github.com"},
		{"héllo wörld", "héllo wörld"},
		{"a\x1b[31mb", `a\x1b[31mb`},
		{"a\r\nb", `a\x0d\x0ab`},
		{"c1\u009b", `c1\u009b`},
		{"bidi\u202e", `bidi\u202e`},
		{"bad\xff", `bad\xff`},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFmt(t *testing.T) {
	bytesTests := []struct {
		n           int64
		short, long string
	}{
		{0, "0B", "0 B"},
		{1023, "1023B", "1023 B"},
		{1024, "1.0K", "1.0 KiB"},
		{5123, "5.0K", "5.0 KiB"},
		{20480, "20K", "20 KiB"},
		{50 << 20, "50M", "50 MiB"},
		{3 << 40, "3.0T", "3.0 TiB"},
	}
	for _, tt := range bytesTests {
		if got := fmtBytes(tt.n, false); got != tt.short {
			t.Errorf("fmtBytes(%d) = %q, want %q", tt.n, got, tt.short)
		}
		if got := fmtBytes(tt.n, true); got != tt.long {
			t.Errorf("fmtBytes(%d, long) = %q, want %q", tt.n, got, tt.long)
		}
	}
	durTests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{812400 * time.Microsecond, "812ms"},
		{3240 * time.Millisecond, "3.2s"},
		{62300 * time.Millisecond, "1m2s"},
		{2*time.Hour + 5*time.Second, "2h0m5s"},
	}
	for _, tt := range durTests {
		if got := fmtDuration(tt.d); got != tt.want {
			t.Errorf("fmtDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestWrapAndTruncate(t *testing.T) {
	if got := truncate("abcdef", 4); got != "abc…" {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("abc", 3); got != "abc" {
		t.Errorf("truncate kept = %q", got)
	}
	if got := truncate("日本語テキスト", 5); lipgloss.Width(got) > 5 || !strings.HasSuffix(got, "…") {
		t.Errorf("wide truncate = %q", got)
	}
	got := wrap("one two three "+strings.Repeat("x", 25), 10)
	want := []string{"one two", "three", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxx"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("wrap = %q, want %q", got, want)
	}
}

// Every cell starts (left-aligned columns) or ends (numbers) where its
// header does, at every width, whatever was cut.
func TestHostTableColumnsAlign(t *testing.T) {
	s := fixture()
	s.Hosts[0].Statuses = map[string]int{"1xx": 1, "2xx": 1000, "3xx": 10, "4xx": 100, "5xx": 3}
	right := map[string]bool{"REQ": true, "INJ": true, "SENT": true, "RECV": true}
	for _, o := range []Options{{Format: "plain"}, {Format: "pretty", Color: ColorNone}, {Format: "pretty", Color: ColorNone, Width: 60}, {Format: "pretty", Color: ColorANSI, Width: 50}} {
		out := sgr.ReplaceAllString(render(t, s, o), "")
		lines := strings.Split(out, "\n")
		h := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "HOST ") })
		if h < 0 {
			t.Fatalf("%+v: no table:\n%s", o, out)
		}
		header := []rune(lines[h])
		fields := regexp.MustCompile(`\S+`).FindAllStringIndex(string(header), -1)
		if len(fields) != 7 {
			t.Fatalf("%+v: header %q has %d columns", o, lines[h], len(fields))
		}
		for _, row := range lines[h+1 : h+1+len(s.Hosts)] {
			r := []rune(row)
			for _, f := range fields[1:] {
				title := string(header)[f[0]:f[1]]
				start, end := utf8.RuneCountInString(string(header)[:f[0]]), utf8.RuneCountInString(string(header)[:f[1]])
				if right[title] {
					if end > len(r) || r[end-1] == ' ' || (end < len(r) && r[end] != ' ') {
						t.Errorf("%+v: %s not right-aligned in %q", o, title, row)
					}
				} else if start >= len(r) || r[start] == ' ' || r[start-1] != ' ' {
					t.Errorf("%+v: %s does not start under its header in %q", o, title, row)
				}
			}
		}
	}
}
