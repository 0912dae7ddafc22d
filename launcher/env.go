// Package launcher builds the agent's environment and runs it as a child
// process: PATH lookup with shell-like exit codes, signal handling that keeps
// a TUI usable in the same terminal, and exit-status passthrough.
package launcher

import (
	"maps"
	"slices"
	"strings"
)

// EnvSpec is everything BuildEnv needs to derive the child's environment.
type EnvSpec struct {
	Base         []string          // agentvault's own environ, KEY=VALUE
	ProxyURL     string            // http://agentvault:PASS@127.0.0.1:PORT
	NoProxy      []string          // extra entries from --no-proxy and config
	BundlePath   string            // system/upstream roots + session CA
	CAPath       string            // session CA certificate alone
	SessionID    string            // AGENTVAULT_SESSION
	Placeholders map[string]string // env var -> placeholder
	Remove       []string          // variables a backend or env: reference consumed
}

// SessionVar marks a process as running inside an agentvault session.
const SessionVar = "AGENTVAULT_SESSION"

// defaultNoProxy keeps loopback traffic (local dev servers, the agent's own
// helpers) off the proxy, whatever the inherited value says.
const defaultNoProxy = "localhost,127.0.0.1,::1"

var (
	proxyVars   = []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"}
	noProxyVars = []string{"NO_PROXY", "no_proxy"}
	bundleVars  = []string{
		"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
		"AWS_CA_BUNDLE", "PIP_CERT", "CARGO_HTTP_CAINFO", "BUNDLE_SSL_CA_CERT",
		"npm_config_cafile", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
	}
	// Node and Deno add these to their built-in roots, so they get the session
	// CA alone rather than a second copy of every system root.
	caOnlyVars = []string{"NODE_EXTRA_CA_CERTS", "DENO_CERT"}
	// ifSetBundleVars name a PEM bundle for one tool (Nix-built programs,
	// httplib2, gcloud, websocket-client, Composer, Hex, Yarn). Set
	// inherited, they would keep that tool on roots without the session CA,
	// so they are pointed at the bundle too; unset, they stay unset, since
	// the tools fall back to SSL_CERT_FILE or the system roots.
	ifSetBundleVars = []string{
		"NIX_SSL_CERT_FILE", "HTTPLIB2_CA_CERTS", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
		"WEBSOCKET_CLIENT_CA_BUNDLE", "COMPOSER_CAFILE", "HEX_CACERTS_PATH", "YARN_CA_FILE_PATH",
	}
)

// gitProxyAuth makes git (libcurl) send the proxy password on its first
// CONNECT; by default it tries without, and every git operation would start
// with a 407 recorded as auth_failed.
const gitProxyAuth = "GIT_HTTP_PROXY_AUTHMETHOD"

// alwaysRemoved are dropped from every child environment.
//
// SSL_CERT_DIR: the bundle must be the child's only trust source. OpenSSL,
// and the stacks built on it, look certificates up in that directory as well
// as (and for some builds instead of) SSL_CERT_FILE; an inherited directory
// lacks the session CA, so a client that consults it first, or only, would
// bypass the bundle and fail on every MITM'd host. The roots agentvault
// trusts are already in the bundle.
var alwaysRemoved = []string{"SSL_CERT_DIR"}

// BuildEnv returns the child's environment, sorted by key
// with one entry per key. Managed variables replace inherited ones in any
// case variant (npm, Windows-born tooling and some proxies match names
// case-insensitively, so a stray "Https_Proxy" must not survive). Removed
// variables are matched exactly; a placeholder variable is never removed.
func BuildEnv(s EnvSpec) []string {
	env := parseEnv(s.Base)

	set := map[string]string{}
	for _, k := range proxyVars {
		set[k] = s.ProxyURL
	}
	set["NODE_USE_ENV_PROXY"] = "1"
	np := mergeNoProxy(env, s.NoProxy)
	for _, k := range noProxyVars {
		set[k] = np
	}
	for _, k := range bundleVars {
		set[k] = s.BundlePath
	}
	for _, k := range caOnlyVars {
		set[k] = s.CAPath
	}
	for _, k := range ifSetBundleVars {
		if env[k] != "" {
			set[k] = s.BundlePath
		}
	}
	set[gitProxyAuth] = "basic"
	set[SessionVar] = s.SessionID
	set["AGENTVAULT_PROXY"] = s.ProxyURL
	set["AGENTVAULT_CA"] = s.CAPath

	managed := map[string]bool{}
	for k := range set {
		managed[strings.ToUpper(k)] = true
	}
	for k := range env {
		if managed[strings.ToUpper(k)] {
			delete(env, k)
		}
	}
	for _, k := range s.Remove {
		if _, isPlaceholder := s.Placeholders[k]; !isPlaceholder {
			delete(env, k)
		}
	}
	for _, k := range alwaysRemoved {
		delete(env, k)
	}
	// Placeholders go in before the managed values so that a misconfigured
	// credential env name such as HTTPS_PROXY cannot unhook the proxy.
	for k, v := range s.Placeholders {
		env[k] = v
	}
	for k, v := range set {
		env[k] = v
	}

	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// Nested reports whether env belongs to a process already inside an
// agentvault session. Any non-empty AGENTVAULT_SESSION entry counts: with
// duplicates, getenv sees the first and os/exec keeps the last, so refusing
// on either is the safe reading.
func Nested(env []string) bool {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, SessionVar+"="); ok && v != "" {
			return true
		}
	}
	return false
}

// parseEnv turns KEY=VALUE entries into a map; the last entry of a key wins,
// as with getenv after os/exec's deduplication. Entries without '=' carry no
// value and are dropped.
func parseEnv(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		// Start at 1: Windows keeps per-drive entries such as "=C:=C:\".
		i := strings.IndexByte(kv, '=')
		if i == 0 {
			if j := strings.IndexByte(kv[1:], '='); j >= 0 {
				i = j + 1
			} else {
				i = -1
			}
		}
		if i < 0 {
			continue
		}
		m[kv[:i]] = kv[i+1:]
	}
	return m
}

// mergeNoProxy joins the loopback defaults, the inherited NO_PROXY then
// no_proxy entries and the extra ones, dropping blanks and repeats
// (case-insensitively, as host names compare) while keeping first-seen order.
// A "*" entry is dropped: it would send the child around the proxy entirely,
// and with it every injection and guard.
func mergeNoProxy(env map[string]string, extra []string) string {
	var out []string
	seen := map[string]bool{}
	add := func(list string) {
		for _, e := range strings.Split(list, ",") {
			e = strings.TrimSpace(e)
			if e == "" || e == "*" || seen[strings.ToLower(e)] {
				continue
			}
			seen[strings.ToLower(e)] = true
			out = append(out, e)
		}
	}
	add(defaultNoProxy)
	for _, k := range noProxyVars {
		add(env[k])
	}
	for _, e := range extra {
		add(e)
	}
	return strings.Join(out, ",")
}
