package audit

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// maxRows keeps a session that touched hundreds of hosts from burying the
// warnings; the audit log has every record.
const maxRows = 50

// styles is the palette of the text formats. plain uses a renderer forced
// to no color, so both share one layout and plain can never emit escapes.
type styles struct {
	pretty                               bool // unicode glyphs, wrapping, truncation
	none, title, session, ok, bad, faint lipgloss.Style
	header, warnHead, warn, leak, note   lipgloss.Style
	class                                map[string]lipgloss.Style
}

func newStyles(r *lipgloss.Renderer, pretty bool) styles {
	c := func(n string) lipgloss.Style { return r.NewStyle().Foreground(lipgloss.Color(n)) }
	// Basic ANSI colors only: they follow the user's terminal theme, light
	// or dark, and need no background query.
	return styles{
		pretty:   pretty,
		none:     r.NewStyle(),
		title:    r.NewStyle().Bold(true),
		session:  c("6").Bold(true),
		ok:       c("2"),
		bad:      c("1").Bold(true),
		faint:    r.NewStyle().Faint(true),
		header:   r.NewStyle().Bold(true),
		warnHead: c("3").Bold(true),
		warn:     c("3"),
		leak:     c("1"),
		note:     r.NewStyle().Faint(true),
		class: map[string]lipgloss.Style{
			"1xx": c("6"), classWebSocket: c("2"), "2xx": c("2"), "3xx": c("6"), "4xx": c("3"), "5xx": c("1"),
			classDenied: c("1"), classBlocked: c("1").Bold(true), classError: c("1"),
		},
	}
}

// profiles maps the Color setting to a termenv profile; ColorAuto is absent:
// the renderer then detects from w and the environment itself.
var profiles = map[Color]termenv.Profile{
	ColorNone: termenv.Ascii, ColorANSI: termenv.ANSI, ColorANSI256: termenv.ANSI256, ColorTrueColor: termenv.TrueColor,
}

func prettyStyles(w io.Writer, color Color) styles {
	r := lipgloss.NewRenderer(w)
	if p, ok := profiles[color]; ok {
		r.SetColorProfile(p)
	}
	if os.Getenv("NO_COLOR") != "" {
		r.SetColorProfile(termenv.Ascii)
	}
	return newStyles(r, true)
}

func plainStyles(w io.Writer) styles {
	r := lipgloss.NewRenderer(w)
	r.SetColorProfile(termenv.Ascii)
	return newStyles(r, false)
}

// renderText renders pretty (width > 0: fit, wrap, color) and plain
// (width 0: nothing cut, ASCII decoration).
func renderText(v view, st styles, width int) string {
	var b strings.Builder

	// Header: who, how it ended, how long.
	parts := []string{st.title.Render("agentvault")}
	if v.Session != "" {
		parts[0] = st.title.Render("agentvault session") + " " + st.session.Render(v.Session)
	}
	if v.ExitStatus != ExitUnknown {
		es := st.ok
		if v.ExitStatus != 0 {
			es = st.bad
		}
		parts = append(parts, es.Render("exit "+strconv.Itoa(v.ExitStatus)))
	}
	parts = append(parts, fmtDuration(v.Duration))
	if !st.pretty && !v.Start.IsZero() {
		parts = append(parts, "started "+v.Start.UTC().Format(time.RFC3339))
	}
	sep := ", "
	if st.pretty {
		sep = st.faint.Render(" · ")
	}
	b.WriteString(strings.Join(parts, sep) + "\n")
	if len(v.Command) > 0 {
		line := v.CommandLine
		if width > 0 {
			line = truncate(line, width-2)
		}
		b.WriteString(st.faint.Render("$") + " " + line + "\n")
	}
	b.WriteString("\n")

	if len(v.Hosts) == 0 {
		b.WriteString(st.faint.Render("no requests went through the proxy") + "\n")
	} else {
		writeHostTable(&b, v.Hosts, st, width)
	}

	bullet, noteBullet := "- ", "- "
	if st.pretty {
		bullet, noteBullet = "! ", "· "
	}
	if len(v.Warnings) > 0 {
		b.WriteString("\n" + st.warnHead.Render(fmt.Sprintf("Warnings (%d)", len(v.Warnings))) + "\n")
		for _, w := range v.Warnings {
			style := st.warn
			if strings.HasPrefix(w, "leak blocked") {
				style = st.leak
			}
			writeItem(&b, bullet, w, style, width)
		}
	}
	if len(v.Notes) > 0 {
		b.WriteString("\n" + st.header.Render("Notes") + "\n")
		for _, n := range v.Notes {
			writeItem(&b, noteBullet, n, st.note, width)
		}
	}
	return b.String()
}

// writeItem writes one bulleted line, wrapped under its bullet in pretty.
func writeItem(b *strings.Builder, bullet, text string, style lipgloss.Style, width int) {
	lines := []string{text}
	if width > 0 {
		lines = wrap(text, width-2-ansi.StringWidth(bullet))
	}
	for i, l := range lines {
		lead := "  " + bullet
		if i > 0 {
			lead = strings.Repeat(" ", 2+ansi.StringWidth(bullet))
		}
		b.WriteString(style.Render(lead+l) + "\n")
	}
}

// column is one column of the host table; the numbers are right-aligned.
type column struct {
	title string
	right bool
}

const (
	colHost = iota
	colReq
	colInj
	colCred
	colStatus
	colSent
	colRecv
)

// gap separates the host table's columns.
const gap = 2

func writeHostTable(b *strings.Builder, hosts []HostRow, st styles, width int) {
	cols := []column{
		{"HOST", false}, {"REQ", true}, {"INJ", true}, {"CREDENTIAL", false},
		{"STATUS", false}, {"SENT", true}, {"RECV", true},
	}
	shown, rest := hosts, []HostRow(nil)
	if len(hosts) > maxRows {
		shown, rest = hosts[:maxRows], hosts[maxRows:]
	}
	rows := make([][]string, 0, len(shown))
	for _, h := range shown {
		creds := strings.Join(h.Credentials, ",")
		if creds == "" {
			creds = "-"
		}
		// Each status class keeps its own color; the table measures and
		// cuts cells by their visible width, escapes included.
		status := make([]string, 0, len(h.Statuses))
		for _, k := range classOrder(h.Statuses) {
			style, ok := st.class[k]
			if !ok {
				style = st.none
			}
			status = append(status, style.Render(classCount(h, k)))
		}
		rows = append(rows, []string{
			hostPort(h.Host, h.Port),
			strconv.Itoa(h.Requests),
			strconv.Itoa(h.Injected),
			creds,
			strings.Join(status, " "),
			fmtBytes(h.ReqBytes, false),
			fmtBytes(h.RespBytes, false),
		})
	}

	widths := make([]int, len(cols))
	titles := make([]string, len(cols))
	for i, c := range cols {
		titles[i] = c.title
		widths[i] = ansi.StringWidth(c.title)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], ansi.StringWidth(c))
		}
	}
	if width > 0 {
		fitWidths(widths, width)
	}
	for i := range titles {
		titles[i] = truncate(titles[i], widths[i])
	}
	total := 0
	for i := range widths {
		widths[i] += gap // every column but the last carries the gap on its right
		total += widths[i]
	}
	widths[len(widths)-1] -= gap
	total -= gap

	t := table.New().
		Border(lipgloss.HiddenBorder()).
		BorderTop(false).BorderBottom(false).BorderLeft(false).BorderRight(false).
		BorderHeader(false).BorderColumn(false).
		Wrap(false).
		Width(total).
		Headers(titles...).
		Rows(rows...).
		StyleFunc(func(row, col int) lipgloss.Style {
			style := st.none
			if row == table.HeaderRow {
				style = st.header
			}
			style = style.Width(widths[col])
			if col < len(cols)-1 {
				style = style.PaddingRight(gap)
			}
			if cols[col].right {
				style = style.Align(lipgloss.Right)
			}
			return style
		})
	for _, line := range strings.Split(t.String(), "\n") {
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	if len(rest) > 0 {
		n := 0
		for _, h := range rest {
			n += h.Requests
		}
		b.WriteString(st.faint.Render(fmt.Sprintf("... and %s (%s)", plural(len(rest), "more host"), plural(n, "request"))) + "\n")
	}
}

// fitWidths narrows the text columns, host first, until the table fits in
// width, never below what keeps a cell recognizable.
func fitWidths(w []int, width int) {
	steps := []struct{ col, floor int }{
		{colHost, 24}, {colCred, 12}, {colStatus, 16}, {colHost, 12}, {colCred, 6}, {colStatus, 8},
	}
	total := func() int {
		t := gap * (len(w) - 1)
		for _, x := range w {
			t += x
		}
		return t
	}
	for _, s := range steps {
		excess := total() - width
		if excess <= 0 {
			return
		}
		if w[s.col] > s.floor {
			w[s.col] -= min(excess, w[s.col]-s.floor)
		}
	}
}

// classOrder lists status classes numerically first, then the refusals.
func classOrder(m map[string]int) []string {
	rank := map[string]int{"1xx": 1, classWebSocket: 1, "2xx": 2, "3xx": 3, "4xx": 4, "5xx": 5, classDenied: 6, classBlocked: 7, classError: 8, classNone: 9}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank[keys[i]], rank[keys[j]]
		if ri == 0 {
			ri = 100
		}
		if rj == 0 {
			rj = 100
		}
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// truncate cuts s to at most width cells, marking the cut with an ellipsis.
func truncate(s string, width int) string {
	if width <= 0 {
		return ""
	}
	return ansi.Truncate(s, width, "…")
}

// wrap breaks text at spaces into lines of at most width cells; a word
// longer than a line is cut. Unlike ansi.Wrap it never breaks at a hyphen,
// which would split the host names warnings are made of.
func wrap(text string, width int) []string {
	if width < 10 {
		width = 10
	}
	var lines []string
	var cur string
	for _, word := range strings.Fields(text) {
		for ansi.StringWidth(word) > width {
			if cur != "" {
				lines = append(lines, cur)
				cur = ""
			}
			head := ansi.Truncate(word, width, "")
			lines = append(lines, head)
			word = word[len(head):]
		}
		switch {
		case cur == "":
			cur = word
		case ansi.StringWidth(cur)+1+ansi.StringWidth(word) <= width:
			cur += " " + word
		default:
			lines = append(lines, cur)
			cur = word
		}
	}
	if cur != "" || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// fmtBytes is compact ("5.0K") for the text tables and spelled out
// ("5.0 KiB") for Markdown.
func fmtBytes(n int64, long bool) string {
	if n < 1024 {
		if long {
			return strconv.FormatInt(n, 10) + " B"
		}
		return strconv.FormatInt(n, 10) + "B"
	}
	units := "KMGTPE"
	v := float64(n)
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	num := strconv.FormatFloat(v, 'f', 1, 64)
	if v >= 10 {
		num = strconv.FormatFloat(v, 'f', 0, 64)
	}
	if long {
		return num + " " + string(units[i]) + "iB"
	}
	return num + string(units[i])
}

// classCount renders one status class with its count; WebSocket sessions
// add how long they stayed open, since their bytes alone do not tell an
// idle session from a busy one.
func classCount(h HostRow, class string) string {
	s := fmt.Sprintf("%s:%d", class, h.Statuses[class])
	if class == classWebSocket && h.WebSocketTime > 0 {
		s += " (" + fmtDuration(h.WebSocketTime) + ")"
	}
	return s
}
