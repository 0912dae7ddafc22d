package config

import (
	"bytes"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxLocateLines bounds the prefix search below (quadratic in the line count);
// longer files get yaml.v3's own line.
const maxLocateLines = 2000

// decodeDocuments parses at most two documents: a second one is an error
// anyway, and stopping there bounds the work.
func decodeDocuments(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for len(docs) < 2 {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &n)
	}
	return docs, nil
}

// syntaxError places a yaml.v3 syntax error on the line that caused it.
// yaml.v3 reports parser errors at the start of the enclosing construct and
// one line early, so its line is not trusted: the culprit is the line after
// the longest prefix of the file that still parses. (Truncating valid block
// YAML at a line boundary keeps it valid, so every prefix before the culprit
// parses, except ones cut inside a multi-line flow or quoted scalar, which a
// scan from the end never stops at.)
func syntaxError(file string, data []byte, err error) *ConfigError {
	msg, line := cleanYAMLMessage(err.Error())
	ce := &ConfigError{File: file, Line: line, Msg: msg}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > maxLocateLines {
		return ce
	}
	culprit := 0
	for n := len(lines) - 1; n >= 0; n-- {
		if _, err := decodeDocuments([]byte(strings.Join(lines[:n], ""))); err == nil {
			culprit = n + 1
			break
		}
	}
	if culprit == 0 || culprit > len(lines) {
		return ce
	}
	text := strings.TrimRight(lines[culprit-1], "\r\n")
	ce.Line, ce.Column = culprit, 0
	if col := indentTab(text); col > 0 {
		ce.Column = col
		ce.Msg = "tab character in indentation (YAML indents with spaces only)"
		return ce
	}
	if m := scanOpen(lines[:culprit]); m != nil {
		ce.Line, ce.Column = m.line, m.col
		switch m.ch {
		case '[':
			ce.Msg = "unclosed '[' (no matching ']')"
		case '{':
			ce.Msg = "unclosed '{' (no matching '}')"
		default:
			ce.Msg = "unterminated quoted string (no closing " + string(m.ch) + ")"
		}
		return ce
	}
	// yaml.v3's message describes what the parser missed; on a line that
	// broke a valid prefix that is almost always the indentation.
	if strings.HasPrefix(ce.Msg, "did not find expected") {
		ce.Msg += " (check the indentation of this line)"
	}
	return ce
}

// indentTab returns the 1-based column of a tab in the line's indentation,
// including the space after a "- " or "? " indicator, or 0.
func indentTab(text string) int {
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '\t':
			return i + 1
		case c == ' ':
		case (c == '-' || c == '?') && (i+1 == len(text) || text[i+1] == ' ' || text[i+1] == '\t'):
		default:
			return 0
		}
	}
	return 0
}

type openMark struct {
	ch        byte
	line, col int
}

// scanOpen is a small YAML tokenizer that finds the innermost flow
// collection or quoted scalar still open at the end of lines. It knows where
// quotes can start (so "don't" is plain text), comments and block scalars.
func scanOpen(lines []string) *openMark {
	var stack []openMark
	var quote *openMark
	blockIndent := -1 // indentation of the line that started a block scalar
	for li, raw := range lines {
		text := strings.TrimRight(raw, "\r\n")
		indent := len(text) - len(strings.TrimLeft(text, " "))
		if blockIndent >= 0 {
			if strings.TrimSpace(text) == "" || indent > blockIndent {
				continue
			}
			blockIndent = -1
		}
		tokenStart := true
		for i := 0; i < len(text); i++ {
			c := text[i]
			if quote != nil {
				switch {
				case quote.ch == '"' && c == '\\':
					i++
				case c == quote.ch && c == '\'' && i+1 < len(text) && text[i+1] == '\'':
					i++
				case c == quote.ch:
					quote, tokenStart = nil, false
				}
				continue
			}
			switch {
			case c == ' ' || c == '\t':
			case c == '#' && (i == 0 || text[i-1] == ' ' || text[i-1] == '\t'):
				i = len(text)
			case tokenStart && (c == '"' || c == '\''):
				quote = &openMark{c, li + 1, i + 1}
			case tokenStart && (c == '[' || c == '{'):
				stack = append(stack, openMark{c, li + 1, i + 1})
			case (c == ']' || c == '}') && len(stack) > 0:
				stack, tokenStart = stack[:len(stack)-1], false
			case c == ',' && len(stack) > 0:
				tokenStart = true
			case c == ':' && (i+1 == len(text) || text[i+1] == ' ' || len(stack) > 0):
				tokenStart = true
			case tokenStart && (c == '-' || c == '?') && (i+1 == len(text) || text[i+1] == ' '):
			case tokenStart && (c == '&' || c == '!'):
				for i+1 < len(text) && text[i+1] != ' ' {
					i++
				}
			case tokenStart && len(stack) == 0 && (c == '|' || c == '>'):
				blockIndent, i = indent, len(text)
			default:
				tokenStart = false
			}
		}
	}
	if quote != nil {
		return quote
	}
	if len(stack) > 0 {
		return &stack[len(stack)-1]
	}
	return nil
}
