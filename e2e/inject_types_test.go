package e2e

import (
	"strings"
	"testing"
)

// TestInjectionTypes covers the inject: rules of docs/configuration.md in one session: each
// credential has its own host(s), secret and placeholder variable.
func TestInjectionTypes(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	up := newUpstream(t, true)
	sec := map[string]string{}
	for _, n := range []string{"HEADER", "QUERY", "BASIC", "MULTI", "SCOPED", "WILD", "BEARER"} {
		sec[n] = newSecret(t, strings.ToLower(n))
	}
	cfg := `version: 1
credentials:
  - name: header
    secret: env:S_HEADER
    hosts: [header.example.test]
    inject: {type: header, name: X-Api-Key, format: "Token {{secret}}"}
  - name: query
    secret: env:S_QUERY
    hosts: [query.example.test]
    inject: {type: query, name: key}
  - name: basic
    secret: env:S_BASIC
    hosts: [basic.example.test]
    inject: {type: basic}
  - name: multi
    secret: env:S_MULTI
    hosts: [multi.example.test, "*.multi.example.test"]
    inject:
      - {type: basic, username: x-access-token, hosts: [multi.example.test]}
      - {type: bearer, hosts: ["*.multi.example.test"]}
  - name: scoped
    secret: env:S_SCOPED
    hosts: [scoped.example.test]
    inject: bearer
    methods: [GET]
    paths: ["/ok/v1/*"]
  - name: wild
    secret: env:S_WILD
    hosts: ["*.wild.example.test"]
    inject: bearer
  - name: bearer
    secret: env:S_BEARER
    hosts: [bearer.example.test]
    inject: bearer
`
	env := map[string]string{}
	for n, v := range sec {
		env["S_"+n] = v
	}
	hosts := []string{"header", "query", "basic", "multi", "api.multi", "scoped", "a.wild", "wild", "bearer"}
	var connect []string
	for _, h := range hosts {
		connect = append(connect, connectTo(h+".example.test", 443, up.Port))
	}
	s := runSession(t, sessionOpts{
		config:  cfg,
		env:     env,
		connect: connect,
		script: curlTo("header", "https://header.example.test/ok/header") +
			curlTo("query", "https://query.example.test/ok/query?a=1") +
			curlTo("basic", "https://basic.example.test/ok/basic") +
			curlTo("multi", "https://multi.example.test/ok/multi") +
			curlTo("apimulti", "https://api.multi.example.test/ok/api-multi") +
			curlTo("scoped-get", "https://scoped.example.test/ok/v1/deep/path") +
			curlTo("scoped-post", "https://scoped.example.test/ok/v1/post", "-X POST", "--data-binary x") +
			curlTo("scoped-path", "https://scoped.example.test/ok/v2/other") +
			curlTo("wild-sub", "https://a.wild.example.test/ok/wild-sub") +
			curlTo("wild-apex", "https://wild.example.test/ok/wild-apex") +
			curlTo("override", "https://bearer.example.test/ok/override", `-H "Authorization: Bearer agent-sent-value"`),
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	header := func(path, name string) string {
		got := up.find(path)
		if len(got) != 1 {
			t.Errorf("%s: upstream got %d requests", path, len(got))
			return ""
		}
		if name == "?" {
			return got[0].RawQuery
		}
		return got[0].Header.Get(name)
	}
	cases := []struct {
		name, path, field, want string
	}{
		{"header with format", "/ok/header", "X-Api-Key", "Token " + sec["HEADER"]},
		{"query parameter", "/ok/query", "?", "a=1&key=" + sec["QUERY"]},
		{"basic, default username", "/ok/basic", "Authorization", "Basic " + b64("x-access-token:"+sec["BASIC"])},
		{"per-host rule: basic on multi", "/ok/multi", "Authorization", "Basic " + b64("x-access-token:"+sec["MULTI"])},
		{"per-host rule: bearer on *.multi", "/ok/api-multi", "Authorization", "Bearer " + sec["MULTI"]},
		{"methods+paths match", "/ok/v1/deep/path", "Authorization", "Bearer " + sec["SCOPED"]},
		{"method not listed", "/ok/v1/post", "Authorization", ""},
		{"path not listed", "/ok/v2/other", "Authorization", ""},
		{"*.domain matches a subdomain", "/ok/wild-sub", "Authorization", "Bearer " + sec["WILD"]},
		{"*.domain does not match the apex", "/ok/wild-apex", "Authorization", ""},
		{"proxy-set header wins", "/ok/override", "Authorization", "Bearer " + sec["BEARER"]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := header(c.path, c.field)
			if got != c.want {
				shown := got
				for n, v := range sec {
					shown = strings.ReplaceAll(shown, v, "<secret "+n+">")
					shown = strings.ReplaceAll(shown, b64("x-access-token:"+v), "<basic "+n+">")
				}
				t.Errorf("%s %s = %q", c.path, c.field, shown)
			}
		})
	}
	for _, n := range []string{"header", "query", "basic", "multi", "apimulti", "scoped-get", "scoped-post", "scoped-path", "wild-sub", "wild-apex", "override"} {
		s.response(t, n, "200")
	}
	if len(auditFind(s.audit, map[string]any{"path": "/ok/v1/post", "action": "inject"})) != 0 {
		t.Error("audit: the POST outside methods: is recorded as inject")
	}
	var all []string
	for _, v := range sec {
		all = append(all, v)
	}
	s.assertNoSecret(t, all...)
}
