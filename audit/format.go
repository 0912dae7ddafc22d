package audit

import (
	"fmt"
	"io"
	"strings"
)

// Summary formats. FormatAuto and FormatOff are resolved by the caller
// (pretty on a TTY, plain otherwise, off with --quiet); FormatTable is the
// `agentvault audit` name for plain.
type Format string

const (
	FormatAuto     Format = "auto"
	FormatPretty   Format = "pretty"
	FormatPlain    Format = "plain"
	FormatMarkdown Format = "markdown"
	FormatJSON     Format = "json"
	FormatOff      Format = "off"
	FormatTable    Format = "table"
)

// ParseFormat validates a --summary value and returns it in canonical
// (lower) case. It does not resolve "auto".
func ParseFormat(s string) (Format, error) {
	f := canonical(s)
	switch f {
	case FormatAuto, FormatPretty, FormatPlain, FormatMarkdown, FormatJSON, FormatOff:
		return f, nil
	}
	return "", fmt.Errorf("invalid summary format %q: want auto, pretty, plain, markdown, json or off", s)
}

// ParseAuditFormat validates the --format value of `agentvault audit`.
func ParseAuditFormat(s string) (Format, error) {
	f := canonical(s)
	switch f {
	case FormatTable, FormatMarkdown, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("invalid audit format %q: want table, markdown or json", s)
}

func canonical(s string) Format { return Format(strings.ToLower(strings.TrimSpace(s))) }

// Color selects the pretty format's color profile.
type Color int

const (
	// ColorAuto detects the profile from the writer (a TTY or not) and the
	// environment (NO_COLOR, CLICOLOR_FORCE, TERM).
	ColorAuto Color = iota
	// ColorNone renders the pretty layout without escape codes.
	ColorNone
	// ColorANSI, ColorANSI256 and ColorTrueColor force that profile; NO_COLOR
	// still turns color off.
	ColorANSI
	ColorANSI256
	ColorTrueColor
)

// DefaultWidth is the width the pretty format fits its table into.
const DefaultWidth = 80

// Options controls RenderWith.
type Options struct {
	Format Format // pretty, plain, table, markdown, json or off
	// Mask replaces known secret values in any string before it is
	// printed; nil prints strings as they are (after control characters
	// are escaped).
	Mask  func(string) string
	Color Color // pretty only
	Width int   // pretty only; 0 means DefaultWidth
}

// Render writes s in format (pretty, plain, table, markdown, json; off
// writes nothing) with pretty's colors detected from w and the
// environment. mask is applied to every string taken from outside.
func Render(w io.Writer, s Summary, format Format, mask func(string) string) error {
	return RenderWith(w, s, Options{Format: format, Mask: mask})
}

// RenderWith is Render with every option; the output is written with a
// single Write.
func RenderWith(w io.Writer, s Summary, o Options) error {
	f := canonical(string(o.Format))
	if f == FormatOff {
		return nil
	}
	v := prepare(s, o.Mask)
	var out string
	switch f {
	case FormatPretty:
		width := o.Width
		if width <= 0 {
			width = DefaultWidth
		}
		out = renderText(v, prettyStyles(w, o.Color), width)
	case FormatPlain, FormatTable:
		out = renderText(v, plainStyles(w), 0)
	case FormatMarkdown:
		out = renderMarkdown(v)
	case FormatJSON:
		b, err := renderJSON(v)
		if err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		out = string(b)
	case FormatAuto:
		return fmt.Errorf("summary format %q must be resolved by the caller", o.Format)
	default:
		return fmt.Errorf("invalid summary format %q", o.Format)
	}
	_, err := io.WriteString(w, out)
	return err
}

// RenderAudit renders a saved audit log for `agentvault audit`: one summary
// per session, in the order the sessions start in the log (json: one object
// per line; table and markdown: separated by a blank line).
func RenderAudit(w io.Writer, entries []Entry, format Format, mask func(string) string) error {
	f, err := ParseAuditFormat(string(format))
	if err != nil {
		return err
	}
	sessions := BySession(entries)
	if len(sessions) == 0 {
		return Render(w, FromEntries(nil), f, mask)
	}
	for i, es := range sessions {
		if i > 0 && f != FormatJSON {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if err := Render(w, FromEntries(es), f, mask); err != nil {
			return err
		}
	}
	return nil
}
