package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestHostPatterns: a list matches when any of its patterns does, as a
// credential binding (TLS, port 443 unless named) or as an egress rule (any
// port unless named). What one pattern matches is tested in hostpattern.
func TestHostPatterns(t *testing.T) {
	creds, err := parsePatterns([]string{"api.example.com:8443", "*.example.org"}, false)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := parsePatterns([]string{"10.0.0.1", "*.example.org:8080"}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host      string
		port      int
		cred, egr bool
	}{
		{"api.example.com", 8443, true, false},
		{"API.example.com.", 443, false, false},
		{"x.example.org", 443, true, false},
		{"x.example.org", 8080, false, true},
		{"10.0.0.1", 443, false, true},
		{"example.org", 8080, false, false},
	} {
		h := normalizeHost(tc.host)
		if got := creds.matchTLS(h, tc.port); got != tc.cred {
			t.Errorf("credential hosts vs %s:%d = %v", tc.host, tc.port, got)
		}
		if got := rules.matchAny(h, tc.port); got != tc.egr {
			t.Errorf("egress rules vs %s:%d = %v", tc.host, tc.port, got)
		}
	}
	if _, err := parsePatterns([]string{"10.0.0.1"}, false); err == nil {
		t.Error("an IP address was accepted as a credential host")
	}
}

// TestPolicyPatterns: a pattern the proxy cannot read is refused when the
// policy is built. Skipping it would drop a deny rule (letting through what
// the user meant to stop) or bind a secret to an IP address; an IP rule
// matches its address however the client spells it.
func TestPolicyPatterns(t *testing.T) {
	cred := func(hosts ...string) []*Credential {
		return []*Credential{{Name: "k", Hosts: hosts, Secret: staticSecret("s3cr3t-value")}}
	}
	for _, tc := range []struct {
		name   string
		creds  []*Credential
		egress Egress
		errHas string
		host   string
		port   int
		allow  bool
	}{
		{name: "deny with a bad port", creds: cred("api.example.test"), egress: Egress{Deny: []string{"paste.example.test:99999"}}, errHas: "bad port"},
		{name: "deny with a URL", creds: cred("api.example.test"), egress: Egress{Deny: []string{"https://paste.example.test"}}, errHas: "not a URL"},
		{name: "blank allow", creds: cred("api.example.test"), egress: Egress{Allow: []string{" "}}, errHas: "empty host pattern"},
		{name: "IP credential host", creds: cred("10.0.0.1"), errHas: "not credential hosts"},
		{name: "trailing-dot credential host", creds: cred("api.example.test."), errHas: "trailing dot"},
		{name: "wildcard inside a name", creds: cred("api.*.test"), errHas: "wildcard"},
		{name: "bad inject host", creds: []*Credential{{Name: "k", Hosts: []string{"a.example.test"}, Secret: staticSecret("s3cr3t-value"),
			Inject: []Injection{{Type: "bearer", Hosts: []string{"a.example.test:0"}}}}}, errHas: "bad port"},
		{name: "deny IP, v4-mapped spelling", creds: cred("api.example.test"), egress: Egress{Deny: []string{"169.254.169.254"}},
			host: "::ffff:169.254.169.254", port: 80, allow: false},
		{name: "deny IPv6, long spelling", creds: cred("api.example.test"), egress: Egress{Deny: []string{"::1"}},
			host: "0:0:0:0:0:0:0:1", port: 80, allow: false},
		{name: "deny wildcard, upper case and trailing dot", creds: cred("api.example.test"), egress: Egress{Deny: []string{"*.paste.test"}},
			host: "X.PASTE.TEST.", port: 443, allow: false},
		{name: "credential host, not its bare domain", creds: cred("*.example.test"), egress: Egress{DefaultDeny: true},
			host: "example.test", port: 443, allow: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := compilePolicy(tc.creds, tc.egress, nil)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("compilePolicy: %v, want an error with %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := p.egress(normalizeHost(tc.host), tc.port); d.allowed != tc.allow {
				t.Errorf("egress(%s:%d) = %+v, want allowed=%v", tc.host, tc.port, d, tc.allow)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		ok   bool
	}{
		{"/v1/charges*", "/v1/charges", true},
		{"/v1/charges*", "/v1/charges/ch_1/refund", true},
		{"/v1/*/refund", "/v1/a/b/refund", true},
		{"/v1/*/refund", "/v1/refund", false},
		{"/exact", "/exact/", false},
		{"*", "", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
	} {
		if got := globMatch(tc.p, tc.s); got != tc.ok {
			t.Errorf("%q vs %q = %v", tc.p, tc.s, got)
		}
	}
}

func FuzzSubstitute(f *testing.F) {
	f.Add("/a/PH/b", "x=PH&y=1", "Bearer PH", "s3cr3t")
	f.Add("/PH", "", "", "a b/c?d#e%")
	f.Fuzz(func(t *testing.T, path, query, header, secret string) {
		const ph = "PH-placeholder-1234"
		path = strings.ReplaceAll(path, "PH", ph)
		query = strings.ReplaceAll(query, "PH", ph)
		header = strings.ReplaceAll(header, "PH", ph)
		u, err := url.Parse("https://h.test" + "/" + strings.TrimPrefix(path, "/"))
		if err != nil || strings.ContainsAny(secret, "\r\n\x00") || strings.Contains(secret, ph) || secret == "" {
			return
		}
		if strings.Contains(query, "#") {
			return // no request line carries a fragment
		}
		u.RawQuery = query
		before, err := url.Parse(u.String())
		if err != nil {
			return // the input itself is not a URL a client could send
		}
		req := &http.Request{URL: u, Header: http.Header{"X": {header}}}
		substitute(req, ph, secret)
		if strings.Contains(req.Header.Get("X"), ph) || strings.Contains(req.URL.Path, ph) || strings.Contains(req.URL.RawQuery, ph) {
			t.Fatalf("placeholder left: %q %q %q", req.Header.Get("X"), req.URL.Path, req.URL.RawQuery)
		}
		// The secret is escaped into the URL: it cannot add a query or fragment.
		back, err := url.Parse(req.URL.String())
		if err != nil {
			t.Fatalf("unparsable URL %q: %v", req.URL.String(), err)
		}
		if back.Fragment != before.Fragment || back.Host != "h.test" || strings.Count(back.RawQuery, "&") != strings.Count(before.RawQuery, "&") {
			t.Fatalf("secret changed the URL's structure: %q", req.URL.String())
		}
	})
}
