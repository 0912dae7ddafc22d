package config

import "errors"

// ValidPlaceholder checks a configured placeholder: long enough not to occur
// by accident in traffic, and made of URL- and header-safe characters.
func ValidPlaceholder(s string) error {
	if len(s) < 12 || len(s) > 512 {
		return errors.New("a placeholder needs 12 to 512 characters, so it cannot occur by accident")
	}
	for i := 0; i < len(s); i++ {
		if !PlaceholderChar(s[i]) {
			return errors.New("a placeholder may only hold letters, digits, '-', '_', '.' and '~'")
		}
	}
	return nil
}

// PlaceholderChar reports whether c may appear in a placeholder (RFC 3986
// unreserved), so that it needs no escaping in a header, a path, a query or a
// shell. Generated placeholders keep to it too.
func PlaceholderChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}
