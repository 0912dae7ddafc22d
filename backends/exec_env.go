package backends

import (
	"fmt"
	"sort"
)

// helperBaseEnv is what every exec helper gets from agentvault's environment
// when set: enough to find programs, its own config and a scratch directory,
// and to decode text. Nothing else is passed unless the backend declares it,
// because a helper runs again on rotation and TTL expiry (both of which the
// agent can trigger) and a same-user agent can read /proc/<helper>/environ
// while it runs.
var helperBaseEnv = []string{"PATH", "HOME", "USER", "LANG", "TMPDIR"}

// execDeclaredEnv validates an exec backend's env: list and returns it sorted
// without repeats. The base variables are refused there: they reach the
// helper anyway, and declaring one would withhold it from the agent.
func execDeclaredEnv(backend string, names []string) ([]string, error) {
	base := map[string]bool{}
	for _, n := range helperBaseEnv {
		base[n] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		switch {
		case !ValidEnvName(n):
			return nil, fmt.Errorf("backend %q: env: %q is not an environment variable name (letters, digits, _; not starting with a digit)", backend, n)
		case base[n]:
			return nil, fmt.Errorf("backend %q: env: %s is always passed to the helper; list only the variables it needs beyond PATH, HOME, USER, LANG and TMPDIR", backend, n)
		case seen[n]:
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// helperEnv is the helper's environment: the base variables, then the
// declared ones, each only when set in agentvault's environment.
func helperEnv(lookup func(string) (string, bool), declared []string) []string {
	env := []string{}
	for _, names := range [][]string{helperBaseEnv, declared} {
		for _, n := range names {
			if v, ok := lookup(n); ok {
				env = append(env, n+"="+v)
			}
		}
	}
	return env
}

// ValidEnvName accepts the portable environment variable names: ASCII
// letters, digits and underscore, not starting with a digit.
func ValidEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
