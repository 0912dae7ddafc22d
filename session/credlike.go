package session

import (
	"slices"
	"strings"
)

// credentialSuffixes mark a variable name as a credential's.
var credentialSuffixes = []string{
	"API_KEY", "APIKEY", "TOKEN", "SECRET", "SECRET_KEY", "ACCESS_KEY", "PRIVATE_KEY", "PASSWORD", "PASSWD",
}

// flagValues are what a variable named like a credential holds when it is a
// switch (HF_HUB_DISABLE_TOKEN=1 style), not a secret.
var flagValues = []string{"", "0", "1", "true", "false", "yes", "no", "on", "off"}

// UnprotectedCredentials lists, sorted, the variables of env (KEY=VALUE, the
// child's environment as it will start) that look like credentials and are
// not protected: a name ending in _API_KEY, _TOKEN, _SECRET, _PASSWORD and
// the like with a value that is not a mere switch, or a value that starts
// with a known token prefix (ghp_, glpat-, xoxb-, sk-, ...) or is a JWT. The
// caller prints the names, never the values.
func UnprotectedCredentials(env []string, protected func(name string) bool) []string {
	var out []string
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" || protected(name) || slices.Contains(out, name) {
			continue
		}
		if credentialName(name, value) || credentialValue(value) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func credentialName(name, value string) bool {
	if slices.Contains(flagValues, strings.ToLower(value)) {
		return false
	}
	up := strings.ToUpper(name)
	for _, s := range credentialSuffixes {
		if up == s || strings.HasSuffix(up, "_"+s) {
			return true
		}
	}
	return false
}

// credentialValue: a known prefix followed by at least 16 token characters,
// so that "sk-" in an ordinary value does not count.
func credentialValue(v string) bool {
	if _, _, ok := splitJWT(v); ok {
		return true
	}
	p, ok := knownPrefix(v)
	return ok && len(v) >= len(p.prefix)+16 && tokenLike(v)
}
