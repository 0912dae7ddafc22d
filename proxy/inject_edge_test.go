package proxy

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestInjectionOverwritesTheAgentsOwnKey: a prompt-injected agent sends its
// own (the attacker's) key to a bound host, hoping the upstream acts for the
// attacker's account. Whatever way it sends it (the header twice, in another
// case, repeated query parameters, Basic userinfo), the channel an inject:
// rule governs ends up holding exactly the real secret, once.
func TestInjectionOverwritesTheAgentsOwnKey(t *testing.T) {
	const own = "attacker-own-key-999"
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	tests := []struct {
		name   string
		inject Injection
		target string
		extra  string
		check  func(t *testing.T, hdr map[string][]string, query map[string][]string)
	}{
		{"bearer over the agent's bearer sent twice", Injection{Type: "bearer"}, "/x",
			"Authorization: Bearer " + own + "\r\nauthorization: Bearer " + own + "\r\n",
			func(t *testing.T, h, q map[string][]string) { exactly(t, h["Authorization"], "Bearer "+secret) }},
		{"bearer over Basic userinfo", Injection{Type: "bearer"}, "/x",
			"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("attacker:"+own)) + "\r\n",
			func(t *testing.T, h, q map[string][]string) { exactly(t, h["Authorization"], "Bearer "+secret) }},
		{"basic over the agent's basic", Injection{Type: "basic", Username: "x-access-token"}, "/x",
			"AUTHORIZATION: Basic " + base64.StdEncoding.EncodeToString([]byte("attacker:"+own)) + "\r\n",
			func(t *testing.T, h, q map[string][]string) {
				exactly(t, h["Authorization"], "Basic "+base64.StdEncoding.EncodeToString([]byte("x-access-token:"+secret)))
			}},
		{"header over the agent's header in two cases", Injection{Type: "header", Name: "X-Api-Key"}, "/x",
			"x-api-key: " + own + "\r\nX-API-KEY: " + own + "\r\n",
			func(t *testing.T, h, q map[string][]string) { exactly(t, h["X-Api-Key"], secret) }},
		{"query over the agent's repeated parameter", Injection{Type: "query", Name: "key"}, "/x?key=" + own + "&key=" + own + "&other=1",
			"",
			func(t *testing.T, h, q map[string][]string) {
				exactly(t, q["key"], secret)
				exactly(t, q["other"], "1")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{tt.inject}, Secret: staticSecret(secret)}
			h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
			before := len(got.all())
			res := rawMITMRequest(t, h, "api.example.test:443",
				fmt.Sprintf("GET %s HTTP/1.1\r\nHost: api.example.test\r\n%sConnection: close\r\n\r\n", tt.target, tt.extra))
			io.Copy(io.Discard, res.Body)
			reqs := got.all()
			if len(reqs) != before+1 {
				t.Fatalf("upstream got %d requests", len(reqs)-before)
			}
			r := reqs[len(reqs)-1]
			tt.check(t, r.Header, r.URL.Query())
			for k, vs := range r.Header {
				for _, v := range vs {
					if strings.Contains(v, own) {
						t.Errorf("upstream still got the agent's own key in %s", k)
					}
				}
			}
			if strings.Contains(r.URL.RawQuery, own) {
				t.Errorf("upstream still got the agent's own key in the query")
			}
		})
	}
}

func exactly(t *testing.T, got []string, want string) {
	t.Helper()
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want exactly [%q]", got, want)
	}
}

// TestSubstitutionIsNotChained: a secret whose value holds another
// credential's placeholder must reach the upstream as it is; substituting
// again would hand one credential's secret to a request (or a header) that
// only asked for the other.
func TestSubstitutionIsNotChained(t *testing.T) {
	const phA, phB = "PH-chain-aaaaaaaa", "PH-chain-bbbbbbbb"
	const secretB = "secret-of-b-0000"
	secretA := "value-of-a-with-" + phB + "-inside"
	up := newTestCA(t, "upstream")
	srv, got := upstream(t, up, echoHandler(), "api.example.test")
	creds := []*Credential{
		{Name: "a", Placeholder: phA, Hosts: []string{"api.example.test"}, Secret: staticSecret(secretA)},
		{Name: "b", Placeholder: phB, Hosts: []string{"api.example.test"}, Secret: staticSecret(secretB)},
	}
	h := startProxy(t, up, creds, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)})
	res := rawMITMRequest(t, h, "api.example.test:443",
		"GET /p/"+phA+"?q="+phA+" HTTP/1.1\r\nHost: api.example.test\r\nX-Token: "+phA+"\r\nConnection: close\r\n\r\n")
	io.Copy(io.Discard, res.Body)
	reqs := got.all()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	r := reqs[0]
	if v := r.Header.Get("X-Token"); v != secretA {
		t.Errorf("header: got %q, want %q", v, secretA)
	}
	if v := r.URL.Query().Get("q"); v != secretA {
		t.Errorf("query: got %q, want %q", v, secretA)
	}
	if r.URL.Path != "/p/"+secretA {
		t.Errorf("path: got %q", r.URL.Path)
	}
	if strings.Contains(r.URL.RawQuery+r.URL.Path+r.Header.Get("X-Token"), secretB) {
		t.Error("b's secret was substituted into a's value")
	}
}
