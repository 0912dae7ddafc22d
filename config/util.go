package config

import (
	"slices"
	"strconv"
	"strings"
)

func contains[T comparable](list []T, v T) bool { return slices.Contains(list, v) }

func quote(s string) string { return strconv.Quote(s) }

func joinComma[T ~string](list []T) string {
	s := make([]string, len(list))
	for i, v := range list {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
