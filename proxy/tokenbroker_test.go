package proxy

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestTokenBroker(t *testing.T) {
	up := newTestCA(t, "upstream")
	var mu sync.Mutex
	var bodies []string
	srv, got := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
		switch {
		case r.Host == "auth.example.test" && r.URL.Path == "/oauth/token" && r.Method == http.MethodPost:
			if r.Header.Get("X-Compress") != "" {
				w.Header().Set("Content-Encoding", "gzip")
			}
			if r.Header.Get("X-Fail") != "" {
				io.WriteString(w, `{"fail":"real-access-new"}`)
				return
			}
			io.WriteString(w, `{"access_token":"real-access-new"}`)
		default:
			// The answer names the token without echoing a real one, which
			// the reflection guard would mask.
			a := r.Header.Get("Authorization")
			a = strings.NewReplacer("real-access-old", "REAL-OLD", "real-access-new", "REAL-NEW").Replace(a)
			io.WriteString(w, "auth="+a)
		}
	}), "auth.example.test", "api.example.test")
	answerErr := errors.New("no access_token")
	tb := &TokenBroker{
		Name: "x-login", Hosts: []string{"api.example.test"}, TokenURL: "https://auth.example.test/oauth/token",
		Access: func() ([]string, []string) {
			return []string{"ph-access-old-000000", "ph-access-new-111111"}, []string{"real-access-old", "real-access-new"}
		},
		Secrets: func() []string { return []string{"real-refresh-0000", "real-access-new"} },
		Rewrite: func(ct string, body []byte) ([]byte, func(int, []byte) ([]byte, error), error) {
			if string(body) != "rt=ph-refresh-222222" {
				return nil, nil, errors.New("not a refresh placeholder")
			}
			return []byte("rt=real-refresh-0000"), func(status int, b []byte) ([]byte, error) {
				if strings.Contains(string(b), `"fail"`) {
					return nil, answerErr
				}
				return []byte(strings.NewReplacer("real-access-new", "ph-access-new-111111", "real-refresh-0000", "ph-refresh-222222").Replace(string(b))), nil
			}, nil
		},
	}
	cred := &Credential{Name: "x-login", Hosts: []string{"auth.example.test", "api.example.test"}, Secret: staticSecret("real-access-new")}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{
		"auth.example.test:443": hostPortOf(srv), "api.example.test:443": hostPortOf(srv),
	}, func(p *Proxy) { p.TokenBrokers = []*TokenBroker{tb} })
	c := h.client(testPassword, nil)

	cases := []struct {
		name, method, url, body string
		header                  map[string]string
		status                  int
		want                    string // in the answer
		notWant                 string // never in the answer
		upstream                string // what the upstream got ("" = nothing)
	}{
		{name: "refresh", method: "POST", url: "https://auth.example.test/oauth/token", body: "rt=ph-refresh-222222",
			status: 200, want: `"access_token":"ph-access-new-111111"`, notWant: "real-", upstream: "rt=real-refresh-0000"},
		{name: "foreign refresh token refused", method: "POST", url: "https://auth.example.test/oauth/token", body: "rt=someone-else",
			status: 403, want: "not a refresh placeholder"},
		{name: "answer that cannot be rewritten", method: "POST", url: "https://auth.example.test/oauth/token", body: "rt=ph-refresh-222222",
			header: map[string]string{"X-Fail": "1"}, status: 502, want: "no access_token", notWant: "real-", upstream: "rt=real-refresh-0000"},
		{name: "compressed answer refused", method: "POST", url: "https://auth.example.test/oauth/token", body: "rt=ph-refresh-222222",
			header: map[string]string{"X-Compress": "1"}, status: 502, want: "compressed", notWant: "real-", upstream: "rt=real-refresh-0000"},
		{name: "old access placeholder on the API", method: "GET", url: "https://api.example.test/v1",
			header: map[string]string{"Authorization": "Bearer ph-access-old-000000"}, status: 200, want: "auth=Bearer REAL-OLD"},
		{name: "new access placeholder on the API", method: "GET", url: "https://api.example.test/v1",
			header: map[string]string{"Authorization": "Bearer ph-access-new-111111"}, status: 200, want: "auth=Bearer REAL-NEW"},
		{name: "access placeholder on the token host stays", method: "GET", url: "https://auth.example.test/userinfo",
			header: map[string]string{"Authorization": "Bearer ph-access-old-000000"}, status: 200, want: "auth=Bearer ph-access-old-000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(got.all())
			req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Fatalf("got %d %q, want %d with %q", res.StatusCode, body, tc.status, tc.want)
			}
			if tc.notWant != "" && strings.Contains(string(body), tc.notWant) {
				t.Fatalf("answer %q holds %q", body, tc.notWant)
			}
			reqs := got.all()[before:]
			if tc.upstream == "" && strings.Contains(tc.url, "oauth") && len(reqs) != 0 {
				t.Fatalf("upstream got %d requests for a refused one", len(reqs))
			}
			if tc.upstream != "" {
				mu.Lock()
				last := bodies[len(bodies)-1]
				mu.Unlock()
				if len(reqs) != 1 || reqs[0].Header.Get("Accept-Encoding") != "identity" || last != tc.upstream {
					t.Fatalf("upstream got %d requests, the last %q", len(reqs), last)
				}
			}
		})
	}
	// Every exchange with the login is recorded under its name; an access
	// placeholder sent elsewhere is warned of.
	for _, r := range h.waitRecords(t, len(cases)) {
		if r.Host == "api.example.test" && r.Credential != "x-login" {
			t.Errorf("record %+v does not name the login", r)
		}
		if r.Path == "/userinfo" && !strings.Contains(r.Warning, `placeholder for "x-login" sent to auth.example.test`) {
			t.Errorf("record %+v does not warn of the placeholder", r)
		}
	}
}
