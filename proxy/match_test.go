package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestHostPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		host    string
		port    int
		tls     bool
		any     bool
	}{
		{"api.example.com", "api.example.com", 443, true, true},
		{"api.example.com", "API.example.com.", 443, true, true},
		{"api.example.com", "api.example.com", 8443, false, true},
		{"api.example.com:8443", "api.example.com", 8443, true, true},
		{"api.example.com:8443", "api.example.com", 443, false, false},
		{"*.example.com", "a.example.com", 443, true, true},
		{"*.example.com", "a.b.example.com", 443, true, true},
		{"*.example.com", "example.com", 443, false, false},
		{"*.example.com", "evilexample.com", 443, false, false},
		{"api.example.com", "api.example.com.evil.test", 443, false, false},
	} {
		p := parsePattern(tc.pattern)
		h := normalizeHost(tc.host)
		if got := p.matchTLS(h, tc.port); got != tc.tls {
			t.Errorf("%s vs %s:%d tls=%v", tc.pattern, tc.host, tc.port, got)
		}
		if got := p.matchAny(h, tc.port); got != tc.any {
			t.Errorf("%s vs %s:%d any=%v", tc.pattern, tc.host, tc.port, got)
		}
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

func FuzzHostPattern(f *testing.F) {
	f.Add("*.example.com", "a.example.com", 443)
	f.Add("api.example.com:8443", "API.EXAMPLE.COM.", 8443)
	f.Fuzz(func(t *testing.T, pattern, host string, port int) {
		p := parsePattern(pattern)
		h := normalizeHost(host)
		// A wildcard never matches its own domain, and nothing matches an
		// unrelated suffix.
		if p.wildcard && h == strings.TrimPrefix(p.suffix, ".") && p.matchAny(h, port) {
			t.Fatalf("%q matched its bare domain %q", pattern, h)
		}
		if p.matchTLS(h, port) && !p.matchAny(h, port) {
			t.Fatalf("tls match without any match: %q %q %d", pattern, host, port)
		}
		if !p.wildcard && p.matchAny(h, port) && h != p.exact {
			t.Fatalf("exact %q matched %q", p.exact, h)
		}
	})
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
