package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// newSecret returns a random value that is easy to grep for and cannot
// collide with anything else in the output.
func newSecret(t *testing.T, kind string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "e2e-" + kind + "-" + hex.EncodeToString(b)
}

// connectTo maps host:port to the local server, as curl's --connect-to.
func connectTo(host string, port, localPort int) string {
	return fmt.Sprintf("%s:%d:127.0.0.1:%d", host, port, localPort)
}

// apiConfig is the common one-credential config: bearer on api.example.test,
// placeholder in $API_TOKEN, secret from agentvault's $TEST_API_TOKEN.
const apiConfig = `version: 1
credentials:
  - name: api
    secret: env:TEST_API_TOKEN
    hosts: [api.example.test]
    inject: bearer
    env: [API_TOKEN]
`

// responseBody reads what a client script saved as $OUT/<name>.status and
// $OUT/<name>.body and checks the status.
func (s *session) response(t *testing.T, name string, wantStatus string) string {
	t.Helper()
	status := strings.TrimSpace(s.file(name + ".status"))
	if status != wantStatus {
		t.Errorf("%s: child got status %q, want %s (client stderr: %.500s)",
			name, status, wantStatus, s.file(name+".err"))
	}
	return s.file(name + ".body")
}

// echoed decodes an /echo response body as the child received it.
func echoed(t *testing.T, body string) recordedRequest {
	t.Helper()
	var r recordedRequest
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Errorf("echo body is not JSON: %v: %.300s", err, body)
	}
	return r
}

// onlyOne fails unless exactly one request was recorded at path.
func onlyOne(t *testing.T, u *upstream, path string) recordedRequest {
	t.Helper()
	got := u.find(path)
	if len(got) != 1 {
		t.Fatalf("upstream got %d requests for %s, want 1 (all: %v)", len(got), path, paths(u.requests()))
	}
	return got[0]
}

func paths(reqs []recordedRequest) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Method+" "+r.Host+r.Path)
	}
	return out
}

// curlTo is a child snippet: curl URL, saving status/body/stderr under $OUT/name.*.
func curlTo(name, url string, extra ...string) string {
	return fmt.Sprintf(`curl -sS --max-time 20 %s -o "$OUT/%s.body" -w '%%{http_code}' '%s' > "$OUT/%s.status" 2> "$OUT/%s.err"
`, strings.Join(extra, " "), name, url, name, name)
}

// rawProxyRequest sends one request line to the proxy at proxyURL by hand
// (no client library adding credentials behind our back). userpass "" sends
// no Proxy-Authorization.
func rawProxyRequest(t *testing.T, proxyURL, method, target, userpass string) *http.Response {
	t.Helper()
	u, err := url.Parse(proxyURL)
	if err != nil {
		t.Fatalf("proxy URL %q: %v", proxyURL, err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	host := target
	if strings.Contains(target, "://") {
		tu, _ := url.Parse(target)
		host = tu.Host
	}
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	if userpass != "" {
		req += "Proxy-Authorization: Basic " + b64(userpass) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: reading response: %v", method, target, err)
	}
	if method != http.MethodConnect || res.StatusCode != 200 {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body = io.NopCloser(strings.NewReader(string(body)))
	}
	return res
}
