package e2e

import (
	"testing"
)

// TestClientsThroughProxy: the HTTP stacks agents are written with (curl,
// Python urllib and requests, Go net/http, Node fetch with undici's
// EnvHttpProxyAgent) all work with only the variables agentvault sets.
func TestClientsThroughProxy(t *testing.T) {
	needBinary(t)
	for _, c := range clientCases() {
		t.Run(c.name, func(t *testing.T) {
			skipOutsideCI(t, c.skip())
			secret := newSecret(t, "api")
			up := newUpstream(t, true)
			path := "/ok/client-" + c.name
			s := runSession(t, sessionOpts{
				config:  apiConfig,
				env:     map[string]string{"TEST_API_TOKEN": secret},
				connect: []string{connectTo("api.example.test", 443, up.Port)},
				script:  c.cmd("https://api.example.test"+path, `$OUT/r`) + "\n",
			})
			if s.code != 0 {
				t.Errorf("exit %d; client stderr: %.1000s", s.code, s.file("r.err"))
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
