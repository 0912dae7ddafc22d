package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestRunCurlBearer is the main path: curl through the proxy gets the
// bearer token injected, and nothing the child can see holds the secret.
func TestRunCurlBearer(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	secret := newSecret(t, "api")
	up := newUpstream(t, true)
	s := runSession(t, sessionOpts{
		config:  apiConfig,
		env:     map[string]string{"TEST_API_TOKEN": secret},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script: curlTo("echo", "https://api.example.test/echo?q=query-value-e2e") +
			// Whether the child can read agentvault's own environment
			// (docs/security.md: non-dumpable); only the count of matches is saved.
			`tr '\0' '\n' < /proc/$PPID/environ 2>/dev/null | grep -c '^TEST_API_TOKEN=' > "$OUT/parent-environ.count" || true` + "\n",
	})
	if s.code != 0 {
		t.Fatalf("exit %d, want 0", s.code)
	}
	ph := s.placeholder(t, "API_TOKEN")

	t.Run("upstream got the bearer secret", func(t *testing.T) {
		got := onlyOne(t, up, "/echo")
		if got.Header.Get("Authorization") != "Bearer "+secret {
			t.Errorf("upstream Authorization = %q, want Bearer <secret>", redact(got.Header.Get("Authorization"), secret, ph))
		}
		if got.Host != "api.example.test" || got.RawQuery != "q=query-value-e2e" {
			t.Errorf("upstream host %q query %q", got.Host, got.RawQuery)
		}
		if v := got.Header.Get("Proxy-Authorization"); v != "" {
			t.Errorf("Proxy-Authorization forwarded upstream: %q", v)
		}
	})

	t.Run("reflection is redacted", func(t *testing.T) {
		// /echo sends the request headers back: the secret must come back
		// to the child as its placeholder (guard.reflection: redact).
		e := echoed(t, s.response(t, "echo", "200"))
		if got := e.Header.Get("Authorization"); got != "Bearer "+ph {
			t.Errorf("child saw echoed Authorization %q, want Bearer <placeholder>", redact(got, secret, ph))
		}
	})

	t.Run("child environment", func(t *testing.T) {
		env := s.childEnv
		if ph == secret || len(ph) < 16 {
			t.Errorf("placeholder is the secret or too short (%d chars)", len(ph))
		}
		if _, ok := env["TEST_API_TOKEN"]; ok {
			t.Error("TEST_API_TOKEN (read by the env: backend) reached the child")
		}
		for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"} {
			if !strings.HasPrefix(env[k], "http://agentvault:") || !strings.Contains(env[k], "@127.0.0.1:") {
				t.Errorf("%s = %q, want http://agentvault:<password>@127.0.0.1:<port>", k, env[k])
			}
		}
		if env["HTTPS_PROXY"] != env["AGENTVAULT_PROXY"] {
			t.Errorf("AGENTVAULT_PROXY differs from HTTPS_PROXY")
		}
		for _, k := range []string{"NO_PROXY", "no_proxy"} {
			for _, want := range []string{"localhost", "127.0.0.1", "::1"} {
				if !containsItem(env[k], want) {
					t.Errorf("%s = %q lacks %s", k, env[k], want)
				}
			}
		}
		bundle := env["SSL_CERT_FILE"]
		if bundle == "" || bundle == "/etc/ssl/certs/ca-certificates.crt" {
			t.Errorf("SSL_CERT_FILE = %q, want the session bundle", bundle)
		}
		for _, k := range []string{"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "AWS_CA_BUNDLE",
			"PIP_CERT", "CARGO_HTTP_CAINFO", "BUNDLE_SSL_CA_CERT", "npm_config_cafile", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"} {
			if env[k] != bundle {
				t.Errorf("%s = %q, want the bundle %q", k, env[k], bundle)
			}
		}
		for _, k := range []string{"NODE_EXTRA_CA_CERTS", "DENO_CERT", "AGENTVAULT_CA"} {
			if env[k] == "" || env[k] == bundle {
				t.Errorf("%s = %q, want the session CA alone", k, env[k])
			}
		}
		if env["NODE_USE_ENV_PROXY"] != "1" {
			t.Errorf("NODE_USE_ENV_PROXY = %q", env["NODE_USE_ENV_PROXY"])
		}
		if env["AGENTVAULT_SESSION"] == "" {
			t.Error("AGENTVAULT_SESSION unset")
		}
	})

	t.Run("session directory", func(t *testing.T) {
		dir := strings.TrimSpace(s.file("sessdir.path"))
		ls := s.file("sessdir.ls")
		if dir == "" || dir == "." || !strings.HasPrefix(firstField(ls, "."), "drwx------") {
			t.Errorf("session dir %q listing:\n%s", dir, ls)
		}
		files := s.file("sessdir.cat")
		if !strings.Contains(files, "BEGIN CERTIFICATE") || strings.Contains(files, "PRIVATE KEY") {
			t.Errorf("session dir files: want certificates only (no private key), got %d bytes", len(files))
		}
		ca := strings.TrimSpace(readFileOr(testCA.PEMPath, "x"))
		if !strings.Contains(files, ca) {
			t.Error("the bundle lacks the --upstream-ca roots")
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("session dir %s still exists after exit (stat: %v)", dir, err)
		}
	})

	t.Run("no secret or placeholder in output", func(t *testing.T) {
		s.assertNoSecret(t, secret)
		s.assertNoPlaceholder(t, ph)
		if strings.Contains(s.auditRaw, "query-value-e2e") {
			t.Error("audit log holds a query string value")
		}
	})

	t.Run("audit and summary", func(t *testing.T) {
		recs := auditFind(s.audit, map[string]any{"action": "inject", "host": "api.example.test", "path": "/echo"})
		if len(recs) != 1 {
			t.Fatalf("want one inject record for api.example.test/echo, got %d of %d records:\n%s", len(recs), len(s.audit), s.auditRaw)
		}
		r := recs[0]
		for k, want := range map[string]any{"credential": "api", "method": "GET", "scheme": "https", "port": 443, "status": 200,
			"session": s.childEnv["AGENTVAULT_SESSION"]} {
			if fmt.Sprint(r[k]) != fmt.Sprint(want) {
				t.Errorf("audit %s = %v, want %v", k, r[k], want)
			}
		}
		// Not a TTY: auto means plain, so the summary is on stderr.
		if !strings.Contains(s.stderr, "api.example.test") {
			t.Errorf("summary on stderr does not name api.example.test")
		}
	})

	t.Run("child cannot read agentvault's environment", func(t *testing.T) {
		// Root with CAP_SYS_PTRACE (this child) may open the file despite
		// non-dumpability; agentvault scrubs the block it shows, so the
		// secret is not there either way.
		n, err := strconv.Atoi(strings.TrimSpace(s.file("parent-environ.count")))
		if err == nil && n > 0 {
			t.Error("the child read TEST_API_TOKEN from /proc/<agentvault>/environ")
		}
	})
}

// TestPlaceholderSubstitution: with `inject: placeholder` (explicit or the
// default) the placeholder is swapped for the secret in headers, query and
// path, only on the credential's host, and nothing is added otherwise.
func TestPlaceholderSubstitution(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	configs := map[string]string{
		"explicit": "    inject: placeholder\n",
		"default":  "",
	}
	for name, inject := range configs {
		t.Run(name, func(t *testing.T) {
			secret := newSecret(t, "anthropic")
			up := newUpstream(t, true)
			cfg := "version: 1\ncredentials:\n  - name: anthropic\n    secret: env:TEST_ANTHROPIC\n" +
				"    hosts: [api.example.test]\n    env: [ANTHROPIC_API_KEY]\n" + inject
			const hdr = `-H "x-api-key: $ANTHROPIC_API_KEY"`
			s := runSession(t, sessionOpts{
				config: cfg,
				env:    map[string]string{"TEST_ANTHROPIC": secret},
				connect: []string{connectTo("api.example.test", 443, up.Port),
					connectTo("other.example.test", 443, up.Port)},
				script: curlTo("header", "https://api.example.test/ok/header", hdr) +
					curlTo("query", `https://api.example.test/ok/query?key='"$ANTHROPIC_API_KEY"'&x=1`) +
					curlTo("path", `https://api.example.test/ok/path/'"$ANTHROPIC_API_KEY"'`) +
					curlTo("none", "https://api.example.test/ok/none") +
					// Another host (a plain tunnel): the placeholder goes through as is.
					curlTo("other", "https://other.example.test/ok/other", hdr) +
					// Host header naming another host than the CONNECT target: refused.
					curlTo("mismatch", "https://api.example.test/ok/mismatch", hdr, "-H 'Host: other.example.test'"),
			})
			if s.code != 0 {
				t.Fatalf("exit %d", s.code)
			}
			ph := s.placeholder(t, "ANTHROPIC_API_KEY")
			s.assertNoSecret(t, secret)
			s.assertNoPlaceholder(t, ph)

			if got := onlyOne(t, up, "/ok/header"); got.Header.Get("X-Api-Key") != secret {
				t.Errorf("header: upstream x-api-key = %q", redact(got.Header.Get("X-Api-Key"), secret, ph))
			} else if got.Header.Get("Authorization") != "" {
				t.Errorf("header: placeholder mode added Authorization %q", redact(got.Header.Get("Authorization"), secret, ph))
			}
			if got := onlyOne(t, up, "/ok/query"); got.RawQuery != "key="+secret+"&x=1" {
				t.Errorf("query: upstream query = %q", redact(got.RawQuery, secret, ph))
			}
			if got := up.find("/ok/path/" + secret); len(got) != 1 {
				t.Errorf("path: upstream paths %v", redactAll(paths(up.requests()), secret, ph))
			}
			if got := onlyOne(t, up, "/ok/none"); got.Header.Get("Authorization") != "" || got.Header.Get("X-Api-Key") != "" {
				t.Errorf("none: something was added: %v", redactAll([]string{fmt.Sprint(got.Header)}, secret, ph))
			}
			if got := onlyOne(t, up, "/ok/other"); got.Host != "other.example.test" || got.Header.Get("X-Api-Key") != ph {
				t.Errorf("other host: upstream host %q x-api-key %q, want the placeholder untouched",
					got.Host, redact(got.Header.Get("X-Api-Key"), secret, ph))
			}
			s.response(t, "other", "200")
			for _, r := range up.find("/ok/mismatch") {
				if r.Header.Get("X-Api-Key") == secret {
					t.Errorf("mismatch: secret sent with Host %q on a CONNECT to api.example.test", r.Host)
				}
			}
			if st, _ := strconv.Atoi(strings.TrimSpace(s.file("mismatch.status"))); st < 400 {
				t.Errorf("mismatch: Host other.example.test inside CONNECT api.example.test got status %d, want a refusal", st)
			}
		})
	}
}

// TestZeroConfigPreset: no config file at all; ANTHROPIC_API_KEY in
// agentvault's environment is protected by the built-in preset.
func TestZeroConfigPreset(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	secret := "sk-ant-api03-" + newSecret(t, "zero")
	up := newUpstream(t, true)
	s := runSession(t, sessionOpts{
		env:     map[string]string{"ANTHROPIC_API_KEY": secret},
		connect: []string{connectTo("api.anthropic.com", 443, up.Port)},
		script:  curlTo("msg", "https://api.anthropic.com/ok/zero", `-H "x-api-key: $ANTHROPIC_API_KEY"`),
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	ph := s.placeholder(t, "ANTHROPIC_API_KEY")
	if !strings.HasPrefix(ph, "sk-ant-") {
		t.Errorf("anthropic placeholder is not shaped like a key (prefix %q)", ph[:min(7, len(ph))])
	}
	if got := onlyOne(t, up, "/ok/zero"); got.Header.Get("X-Api-Key") != secret {
		t.Errorf("upstream x-api-key = %q", redact(got.Header.Get("X-Api-Key"), secret, ph))
	}
	s.response(t, "msg", "200")
	s.assertNoSecret(t, secret)
	s.assertNoPlaceholder(t, ph)
}

// redact makes a value printable in a failure message.
func redact(v, secret, placeholder string) string {
	v = strings.ReplaceAll(v, secret, "<secret>")
	if placeholder != "" {
		v = strings.ReplaceAll(v, placeholder, "<placeholder>")
	}
	return v
}

func redactAll(vs []string, secret, placeholder string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = redact(v, secret, placeholder)
	}
	return out
}

func containsItem(list, item string) bool {
	for _, p := range strings.Split(list, ",") {
		if strings.TrimSpace(p) == item {
			return true
		}
	}
	return false
}

// firstField returns the mode column of the ls -la line for name.
func firstField(ls, name string) string {
	for _, line := range strings.Split(ls, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[len(f)-1] == name {
			return f[0]
		}
	}
	return ""
}
