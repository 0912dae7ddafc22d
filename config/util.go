package config

import (
	"slices"
	"strconv"
	"strings"
)

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func quote(s string) string { return strconv.Quote(s) }

func joinComma(list []string) string { return strings.Join(list, ", ") }
