package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConfigError is a configuration problem with its position. The CLI maps it
// to exit status 78.
type ConfigError struct {
	File   string
	Line   int // 0 when the problem is not tied to a line
	Column int // 0 when unknown
	Msg    string
}

func (e *ConfigError) Error() string {
	file := e.File
	if file == "" {
		file = "agentvault config"
	}
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", file, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", file, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", file, e.Msg)
}

func nodeError(file string, n *yaml.Node, format string, args ...any) *ConfigError {
	e := &ConfigError{File: file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

var (
	yamlLinePrefix = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
	// yaml.v3 quotes the offending value in type errors; a backend option may
	// be a secret (a token pasted in the wrong place), so the value goes.
	yamlQuotedValue = regexp.MustCompile("cannot unmarshal (!!\\w+)(?: `[^`]*`)? into")
)

var yamlTagNames = map[string]string{
	"!!str": "a string", "!!int": "a number", "!!float": "a number", "!!bool": "a boolean",
	"!!null": "null", "!!map": "a mapping", "!!seq": "a list", "!!timestamp": "a timestamp",
}

// cleanYAMLMessage strips yaml.v3's "yaml: line N: " prefix and any quoted value.
func cleanYAMLMessage(msg string) (string, int) {
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if m := yamlLinePrefix.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	msg = yamlQuotedValue.ReplaceAllStringFunc(msg, func(s string) string {
		tag := yamlQuotedValue.FindStringSubmatch(s)[1]
		if name, ok := yamlTagNames[tag]; ok {
			return "cannot decode " + name + " into"
		}
		return "cannot decode " + tag + " into"
	})
	return msg, line
}

// typeError converts the first of a yaml.TypeError's messages; its lines come
// from the node tree, so they are right.
func typeError(file string, err error) *ConfigError {
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		msg, line := cleanYAMLMessage(te.Errors[0])
		return &ConfigError{File: file, Line: line, Msg: msg}
	}
	msg, line := cleanYAMLMessage(err.Error())
	return &ConfigError{File: file, Line: line, Msg: msg}
}
