package audit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// renderMarkdown writes GitHub-flavoured Markdown meant to be appended to
// $GITHUB_STEP_SUMMARY: it starts with a heading and ends with a newline,
// and every outside string is escaped so it cannot open HTML, links or
// table cells.
func renderMarkdown(v view) string {
	var b strings.Builder
	if v.Session == "" {
		b.WriteString("### agentvault\n\n")
	} else {
		fmt.Fprintf(&b, "### agentvault session %s\n\n", codeSpan(v.Session))
	}

	var facts []string
	if v.ExitStatus != ExitUnknown {
		mark := "✅"
		if v.ExitStatus != 0 {
			mark = "❌"
		}
		facts = append(facts, fmt.Sprintf("**Exit status:** %d %s", v.ExitStatus, mark))
	}
	facts = append(facts, "**Duration:** "+fmtDuration(v.Duration))
	if !v.Start.IsZero() {
		facts = append(facts, "**Started:** "+v.Start.UTC().Format(time.RFC3339))
	}
	b.WriteString(strings.Join(facts, " · ") + "\n\n")
	if len(v.Command) > 0 {
		b.WriteString("**Command:** " + codeSpan(v.CommandLine) + "\n\n")
	}

	if len(v.Hosts) == 0 {
		b.WriteString("_No requests went through the proxy._\n")
	} else {
		b.WriteString("| Host | Requests | Injected | Credentials | Statuses | Sent | Received |\n")
		b.WriteString("| --- | ---: | ---: | --- | --- | ---: | ---: |\n")
		shown := v.Hosts
		if len(shown) > maxRows {
			shown = shown[:maxRows]
		}
		for _, h := range shown {
			creds := make([]string, len(h.Credentials))
			for i, c := range h.Credentials {
				creds[i] = mdEscape(c)
			}
			cred := strings.Join(creds, ", ")
			if cred == "" {
				cred = "–"
			}
			var st []string
			for _, k := range classOrder(h.Statuses) {
				c := mdEscape(k) + ": " + strconv.Itoa(h.Statuses[k])
				if k == classWebSocket && h.WebSocketTime > 0 {
					c += " (" + fmtDuration(h.WebSocketTime) + ")"
				}
				st = append(st, c)
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s |\n",
				mdEscape(hostPort(h.Host, h.Port)), h.Requests, h.Injected, cred,
				strings.Join(st, ", "), fmtBytes(h.ReqBytes, true), fmtBytes(h.RespBytes, true))
		}
		if rest := v.Hosts[len(shown):]; len(rest) > 0 {
			n := 0
			for _, h := range rest {
				n += h.Requests
			}
			fmt.Fprintf(&b, "\n_… and %s (%s)._\n", plural(len(rest), "more host"), plural(n, "request"))
		}
	}

	if len(v.Warnings) > 0 {
		b.WriteString("\n**Warnings**\n\n")
		for _, w := range v.Warnings {
			b.WriteString("- ⚠️ " + mdEscape(w) + "\n")
		}
	}
	if len(v.Notes) > 0 {
		b.WriteString("\n**Notes**\n\n")
		for _, n := range v.Notes {
			b.WriteString("- " + mdEscape(n) + "\n")
		}
	}
	return b.String()
}

// mdEscape backslash-escapes the characters that could start emphasis,
// code, links, HTML, entities or math, or end a table cell. Text always
// follows a bullet or a cell border, so line-start syntax (#, +, -) needs
// nothing.
func mdEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|~&$", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// codeSpan wraps s in a code span whose backtick fence is longer than any
// run inside it (CommonMark's rule). It is only used outside tables: GFM
// would split a cell at a pipe even inside a code span.
func codeSpan(s string) string {
	if s == "" {
		return ""
	}
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	inner := s
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		inner = " " + inner + " "
	}
	return fence + inner + fence
}
