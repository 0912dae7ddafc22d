package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests need no agentvault: they prove the servers, the clients and
// the scripts work on their own, through a trivial password-guarded tunnel.

// runChild runs a sh script with a clean environment plus env; $OUT is a
// fresh directory, returned.
func runChild(t *testing.T, env map[string]string, script string) (out string, combined string, err error) {
	t.Helper()
	out = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	env2 := map[string]string{"OUT": out}
	for k, v := range env {
		env2[k] = v
	}
	cmd.Env = cleanEnv(t, env2)
	b, err := cmd.CombinedOutput()
	return out, string(b), err
}

func TestHarnessCurlDirect(t *testing.T) {
	needTestTool(t, "curl")
	up := newUpstream(t, true)
	script := fmt.Sprintf(`curl -sS --max-time 10 --cacert '%s' --resolve api.example.test:%d:127.0.0.1 `+
		`-H 'Authorization: Bearer direct' 'https://api.example.test:%d/echo?x=1'`, testCA.PEMPath, up.Port, up.Port)
	_, out, err := runChild(t, nil, script)
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	got := onlyOne(t, up, "/echo")
	if got.Header.Get("Authorization") != "Bearer direct" || got.RawQuery != "x=1" || !got.TLS {
		t.Errorf("upstream recorded %+v", got)
	}
	if e := echoed(t, out); e.Host != fmt.Sprintf("api.example.test:%d", up.Port) {
		t.Errorf("echo host = %q", e.Host)
	}
}

func TestHarnessGitDirect(t *testing.T) {
	needTestTool(t, "git")
	secret := newSecret(t, "git")
	g := newGitServer(t, secret)
	home := t.TempDir()
	writeGitHome(t, home)
	env := map[string]string{"HOME": home, "GIT_TERMINAL_PROMPT": "0", "GIT_SSL_CAINFO": testCA.PEMPath}
	resolve := fmt.Sprintf("http.curloptResolve=git.example.test:%d:127.0.0.1", g.Port)
	base := fmt.Sprintf("https://git.example.test:%d/repo.git", g.Port)

	// Without the secret the server refuses.
	if _, out, err := runChild(t, env, fmt.Sprintf(`git -c %s clone -q '%s' "$OUT/c"`, resolve, base)); err == nil {
		t.Fatalf("clone without credentials succeeded:\n%s", out)
	}
	authed := fmt.Sprintf("https://x-access-token:%s@git.example.test:%d/repo.git", secret, g.Port)
	script := fmt.Sprintf(`set -e
git -c %[1]s clone -q '%[2]s' "$OUT/c"
cd "$OUT/c"
echo direct > direct.txt
git add direct.txt
git commit -q -m direct-push
git -c %[1]s push -q origin HEAD:main`, resolve, authed)
	if _, out, err := runChild(t, env, script); err != nil {
		t.Fatalf("clone/push: %v\n%s", err, out)
	}
	if log := g.log(t); log[0] != "direct-push" {
		t.Errorf("bare repo log = %v, want direct-push on top", log)
	}
	sawAuth := false
	for _, r := range g.requests() {
		if r.Header.Get("Authorization") == "Basic "+b64("x-access-token:"+secret) {
			sawAuth = true
		}
	}
	if !sawAuth {
		t.Error("git server never saw the expected Basic credentials")
	}
}

// TestHarnessClientsViaTunnel runs every client through fakeProxy with the
// same variables agentvault sets, so the client scripts are known-good.
func TestHarnessClientsViaTunnel(t *testing.T) {
	up := newUpstream(t, true)
	fp := newFakeProxy(t, map[string]int{"api.example.test:443": up.Port})
	env := map[string]string{
		"HTTPS_PROXY": fp.URL, "https_proxy": fp.URL, "HTTP_PROXY": fp.URL, "http_proxy": fp.URL,
		"NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1",
		"SSL_CERT_FILE": testCA.PEMPath, "REQUESTS_CA_BUNDLE": testCA.PEMPath,
		"CURL_CA_BUNDLE": testCA.PEMPath, "NODE_EXTRA_CA_CERTS": testCA.PEMPath,
	}
	for _, c := range clientCases() {
		t.Run(c.name, func(t *testing.T) {
			skipOutsideCI(t, c.skip())
			path := "/echo/self-" + c.name
			out, combined, err := runChild(t, env, c.cmd("https://api.example.test"+path, `$OUT/r`))
			if err != nil {
				t.Fatalf("client: %v\n%s\n%s", err, combined, readFileOr(filepath.Join(out, "r.err"), ""))
			}
			status := readFileOr(filepath.Join(out, "r.status"), "")
			if strings.TrimSpace(status) != "200" {
				t.Errorf("status %q, stderr %s", status, readFileOr(filepath.Join(out, "r.err"), ""))
			}
			got := onlyOne(t, up, path)
			if got.Host != "api.example.test" {
				t.Errorf("Host = %q", got.Host)
			}
			if e := echoed(t, readFileOr(filepath.Join(out, "r.body"), "")); e.Path != path {
				t.Errorf("echo path = %q", e.Path)
			}
		})
	}
}

func TestHarnessGoClientSSEAndWebSocket(t *testing.T) {
	up := newUpstream(t, true)
	fp := newFakeProxy(t, map[string]int{"api.example.test:443": up.Port})
	env := map[string]string{"HTTPS_PROXY": fp.URL, "SSL_CERT_FILE": testCA.PEMPath, "WS_TOKEN": "tok-123"}
	script := fmt.Sprintf(`set -e
'%[1]s' sse 'https://api.example.test/sse?id=self&n=3&delay=50ms' "$OUT/sse.txt"
'%[1]s' ws 'wss://api.example.test/ws' X-Api-Key WS_TOKEN hello-ws "$OUT/ws.json"`, goClientBin)
	out, combined, err := runChild(t, env, script)
	if err != nil {
		t.Fatalf("goclient: %v\n%s", err, combined)
	}
	events := parseSSEArrivals(t, readFileOr(filepath.Join(out, "sse.txt"), ""))
	writes := up.sseTimes("self")
	if len(events) != 3 || len(writes) != 3 {
		t.Fatalf("got %d events, server wrote %d", len(events), len(writes))
	}
	for i := range events {
		t.Logf("direct SSE event %d: %.1f ms after write", i, float64(events[i]-writes[i])/1e6)
	}
	var ws struct {
		Status   int    `json:"status"`
		AcceptOK bool   `json:"accept_ok"`
		Echo     string `json:"echo"`
	}
	if err := json.Unmarshal([]byte(readFileOr(filepath.Join(out, "ws.json"), "")), &ws); err != nil {
		t.Fatal(err)
	}
	if ws.Status != 101 || !ws.AcceptOK || ws.Echo != "hello-ws" {
		t.Errorf("ws result %+v", ws)
	}
	if got := onlyOne(t, up, "/ws"); got.Header.Get("X-Api-Key") != "tok-123" {
		t.Errorf("ws handshake X-Api-Key = %q", got.Header.Get("X-Api-Key"))
	}
}

// TestHarnessProxyGuardProbe checks the raw-CONNECT probe against fakeProxy,
// whose answers are known.
func TestHarnessProxyGuardProbe(t *testing.T) {
	up := newUpstream(t, true)
	fp := newFakeProxy(t, map[string]int{"api.example.test:443": up.Port})
	res := rawProxyRequest(t, fp.URL, "CONNECT", "api.example.test:443", "")
	if res.StatusCode != 407 || res.Header.Get("Proxy-Authenticate") == "" {
		t.Errorf("no auth: %d %v", res.StatusCode, res.Header)
	}
	res = rawProxyRequest(t, fp.URL, "CONNECT", "api.example.test:443", "fake:pw")
	if res.StatusCode != 200 {
		t.Errorf("with auth: %d", res.StatusCode)
	}
}

func TestHarnessUpstreamStreams(t *testing.T) {
	up := newUpstream(t, true)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: testCA.Pool, ServerName: "api.example.test"},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := fmt.Sprintf("https://127.0.0.1:%d", up.Port)

	res, err := client.Get(base + "/download?n=1000003")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if n != 1000003 {
		t.Errorf("download: %d bytes", n)
	}
	res, err = client.Post(base+"/upload?id=u", "application/octet-stream", io.LimitReader(rand.Reader, 777777))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, _ := up.uploadedBytes("u"); got != 777777 {
		t.Errorf("upload: %d bytes", got)
	}
}

func needTestTool(t *testing.T, name string) {
	t.Helper()
	skipOutsideCI(t, needTool(name)())
}

// parseSSEArrivals reads goclient's "index unixnano data" lines.
func parseSSEArrivals(t *testing.T, text string) []int64 {
	t.Helper()
	var out []int64
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		var i int
		var ns int64
		var data string
		if _, err := fmt.Sscan(sc.Text(), &i, &ns, &data); err != nil {
			t.Errorf("bad sse line %q: %v", sc.Text(), err)
			continue
		}
		if data != fmt.Sprintf("event-%d", i) {
			t.Errorf("event %d carried %q", i, data)
		}
		out = append(out, ns)
	}
	return out
}
