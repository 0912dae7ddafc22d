package config

import (
	"errors"
	"strings"
)

// BackendTypes are the backend types the config accepts.
var BackendTypes = []string{"env", "file", "exec", "vault", "aws-secretsmanager", "infisical"}

// typeAliases are short names accepted wherever a type is: "aws:" references
// and `type: aws` both mean Secrets Manager.
var typeAliases = map[string]string{"aws": "aws-secretsmanager"}

// canonicalType maps a type or alias to its canonical type name.
func canonicalType(t string) (string, bool) {
	if a, ok := typeAliases[t]; ok {
		return a, true
	}
	for _, k := range BackendTypes {
		if k == t {
			return k, true
		}
	}
	return "", false
}

// implicitBackendType is the type of a backend used by reference without a
// backends: entry. exec has no useful defaults (it needs a command), so it
// must be declared.
func implicitBackendType(name string) (string, bool) {
	t, ok := canonicalType(name)
	if !ok || t == "exec" {
		return "", false
	}
	return t, true
}

// ParseRef splits "<backend>:<reference>". The error never repeats the input:
// a user who pasted a real token into `secret:` must not see it echoed.
func ParseRef(s string) (Ref, error) {
	if strings.TrimSpace(s) == "" {
		return Ref{}, errors.New("secret is empty")
	}
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return Ref{}, errors.New("secret must be <backend>:<reference>, e.g. env:GITHUB_TOKEN or vault:secret/app#token")
	}
	r := Ref{Backend: s[:i], Ref: s[i+1:]}
	if !validName(r.Backend) {
		return Ref{}, errors.New("secret must start with a backend name (letters, digits, '-', '_') and a colon")
	}
	if r.Ref == "" {
		return Ref{}, errors.New("secret: the reference after the backend name and colon is empty")
	}
	if strings.TrimSpace(r.Ref) != r.Ref {
		return Ref{}, errors.New("secret: the reference after the colon starts or ends with a space")
	}
	return r, nil
}

// validName accepts credential and backend names: they appear in references,
// audit records and messages, so they stay simple.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}
