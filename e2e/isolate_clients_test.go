package e2e

import (
	"testing"
)

// TestIsolateClients: under --isolate every HTTP stack of
// TestClientsThroughProxy (curl, Python urllib and requests, Go net/http,
// Node fetch with undici's EnvHttpProxyAgent) still reaches the credentialed
// host through the proxy, which the sandbox sees at the same 127.0.0.1 port,
// and gets its secret injected, with only the variables of host mode.
func TestIsolateClients(t *testing.T) {
	needBinary(t)
	for _, c := range clientCases() {
		t.Run(c.name, func(t *testing.T) {
			skipOutsideCI(t, c.skip())
			secret := newSecret(t, "api")
			up := newUpstream(t, true)
			path := "/ok/isolated-" + c.name
			s := runSession(t, sessionOpts{
				config:  apiConfig,
				env:     map[string]string{"TEST_API_TOKEN": secret},
				flags:   []string{"--isolate"},
				connect: []string{connectTo("api.example.test", 443, up.Port)},
				// The sandbox's /proc holds only its own processes: proof
				// that this client really ran inside.
				script: c.cmd("https://api.example.test"+path, `$OUT/r`) + "\n" +
					`test "$(cat /proc/1/cmdline | tr '\0' ' ')" = "agentvault-sandbox-init " && echo inside > "$OUT/where"` + "\n",
			})
			if s.code != 0 {
				t.Errorf("exit %d; client stderr: %.1000s\nagentvault: %.1000s", s.code, s.file("r.err"), s.stderr)
			}
			if s.file("where") != "inside\n" {
				t.Fatalf("the client did not run in the sandbox (PID 1 is not its init)")
			}
			s.response(t, "r", "200")
			got := onlyOne(t, up, path)
			if got.Header.Get("Authorization") != "Bearer "+secret {
				t.Errorf("upstream Authorization = %q, want Bearer <secret>",
					redact(got.Header.Get("Authorization"), secret, s.childEnv["API_TOKEN"]))
			}
			s.assertNoSecret(t, secret)
			s.assertNoPlaceholder(t, s.placeholder(t, "API_TOKEN"))
		})
	}
}
