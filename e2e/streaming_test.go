package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sseMaxFirstDelay is how late the first event may reach the child after the
// upstream flushed it (docs/proxy.md: no buffering). Stock martian is ~1 s late.
const sseMaxFirstDelay = 50 * time.Millisecond

// TestSSEStreaming: 5 events 200 ms apart through the MITM path reach the
// child as they are written. Client and server run on this machine and both
// log wall-clock UnixNano, so the difference is the proxy's delay.
func TestSSEStreaming(t *testing.T) {
	needBinary(t)
	secret := newSecret(t, "api")
	up := newUpstream(t, true)
	s := runSession(t, sessionOpts{
		config:  apiConfig,
		env:     map[string]string{"TEST_API_TOKEN": secret},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script: fmt.Sprintf(`'%s' sse 'https://api.example.test/sse?id=av&n=5&delay=200ms' "$OUT/sse.txt" 2> "$OUT/sse.err"`+"\n",
			goClientBin),
	})
	if s.code != 0 {
		t.Fatalf("exit %d; client: %s", s.code, s.file("sse.err"))
	}
	arrivals := parseSSEArrivals(t, s.file("sse.txt"))
	writes := up.sseTimes("av")
	if len(arrivals) != 5 || len(writes) != 5 {
		t.Fatalf("child got %d events, upstream wrote %d; want 5", len(arrivals), len(writes))
	}
	var delays []string
	for i := range arrivals {
		delays = append(delays, fmt.Sprintf("%.1fms", float64(arrivals[i]-writes[i])/1e6))
	}
	t.Logf("SSE delay upstream write -> child read, per event: %s", strings.Join(delays, " "))
	if d := time.Duration(arrivals[0] - writes[0]); d > sseMaxFirstDelay {
		t.Errorf("first event arrived %v after it was written, want <= %v (buffered?)", d, sseMaxFirstDelay)
	}
	// Each event must arrive before the next one is even written.
	for i := 0; i+1 < len(arrivals); i++ {
		if arrivals[i] >= writes[i+1] {
			t.Errorf("event %d arrived only after event %d was written: the stream is buffered", i, i+1)
		}
	}
	s.assertNoSecret(t, secret)
}

// TestWebSocketThroughProxy: CONNECT + TLS + upgrade with the placeholder in
// a handshake header; the upstream sees the real value, the echo comes back.
func TestWebSocketThroughProxy(t *testing.T) {
	needBinary(t)
	secret := newSecret(t, "api")
	up := newUpstream(t, true)
	s := runSession(t, sessionOpts{
		config:  apiConfig,
		env:     map[string]string{"TEST_API_TOKEN": secret},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script: fmt.Sprintf(`'%s' ws 'wss://api.example.test/ws' X-Api-Key API_TOKEN hello-through-agentvault "$OUT/ws.json" 2> "$OUT/ws.err"`+"\n",
			goClientBin),
	})
	if s.code != 0 {
		t.Fatalf("exit %d; client: %s", s.code, s.file("ws.err"))
	}
	ph := s.placeholder(t, "API_TOKEN")
	var res struct {
		Status   int    `json:"status"`
		AcceptOK bool   `json:"accept_ok"`
		Echo     string `json:"echo"`
	}
	if err := json.Unmarshal([]byte(s.file("ws.json")), &res); err != nil {
		t.Fatalf("client result: %v (%s)", err, s.file("ws.err"))
	}
	if res.Status != 101 || !res.AcceptOK || res.Echo != "hello-through-agentvault" {
		t.Errorf("client got %+v, want 101, a valid accept and the echo", res)
	}
	hs := onlyOne(t, up, "/ws")
	if hs.Header.Get("X-Api-Key") != secret {
		t.Errorf("handshake X-Api-Key = %q, want the secret", redact(hs.Header.Get("X-Api-Key"), secret, ph))
	}
	if hs.Header.Get("Authorization") != "Bearer "+secret {
		t.Errorf("handshake Authorization = %q, want Bearer <secret>", redact(hs.Header.Get("Authorization"), secret, ph))
	}
	s.assertNoSecret(t, secret)
	s.assertNoPlaceholder(t, ph)
}

// TestLargeUploadDownload: bodies bigger than any sane buffer stream through
// the MITM path intact, and an upload that asks for 100-continue does not
// stall (curl is told to wait up to 10 s for the interim response, so an
// unanswered Expect shows as a gap no load on the machine can explain).
func TestLargeUploadDownload(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	const size = 24 << 20
	const expectSize = 2 << 20
	secret := newSecret(t, "api")
	up := newUpstream(t, true)
	script := fmt.Sprintf(`head -c %[1]d /dev/urandom > "$OUT/up.bin"
curl -sS --max-time 30 -X POST -H 'Content-Type: application/octet-stream' --data-binary @"$OUT/up.bin" \
  -o "$OUT/up.body" -w '%%{http_code}' 'https://api.example.test/upload?id=big' > "$OUT/up.status" 2> "$OUT/up.err"
head -c %[2]d /dev/urandom > "$OUT/expect.bin"
start=$(date +%%s%%N)
curl -sS --max-time 30 --expect100-timeout 10 -H 'Expect: 100-continue' -X POST --data-binary @"$OUT/expect.bin" \
  -o "$OUT/expect.body" -w '%%{http_code}' 'https://api.example.test/upload?id=expect' > "$OUT/expect.status" 2> "$OUT/expect.err"
echo $(( ($(date +%%s%%N) - start) / 1000000 )) > "$OUT/expect.ms"
curl -sS --max-time 30 -o "$OUT/down.bin" -w '%%{http_code}' 'https://api.example.test/download?n=%[1]d' > "$OUT/down.status" 2> "$OUT/down.err"
wc -c < "$OUT/down.bin" > "$OUT/down.size"
rm -f "$OUT/up.bin" "$OUT/expect.bin" "$OUT/down.bin"
`, size, expectSize)
	s := runSession(t, sessionOpts{
		config:  apiConfig,
		env:     map[string]string{"TEST_API_TOKEN": secret},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script:  script,
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	s.response(t, "up", "200")
	if n, ok := up.uploadedBytes("big"); !ok || n != size {
		t.Errorf("upstream read %d upload bytes, want %d (curl: %s)", n, size, s.file("up.err"))
	}
	s.response(t, "expect", "200")
	if n, ok := up.uploadedBytes("expect"); !ok || n != expectSize {
		t.Errorf("upstream read %d bytes of the Expect upload, want %d (curl: %s)", n, expectSize, s.file("expect.err"))
	}
	ms, _ := strconv.Atoi(strings.TrimSpace(s.file("expect.ms")))
	t.Logf("%d MiB upload with Expect: 100-continue took %d ms", expectSize>>20, ms)
	if ms >= 5000 {
		t.Errorf("upload with Expect: 100-continue took %d ms: the proxy neither answers nor strips Expect", ms)
	}
	if got := strings.TrimSpace(s.file("down.status")); got != "200" {
		t.Errorf("download status %q: %s", got, s.file("down.err"))
	}
	if got := strings.TrimSpace(s.file("down.size")); got != strconv.Itoa(size) {
		t.Errorf("download size %s, want %d", got, size)
	}
	s.assertNoSecret(t, secret)
}

// TestOneConnectionForUploadsAndGets: curl sends two uploads that ask for
// 100-continue and a GET in one invocation; through agentvault they share
// one connection to the proxy (and so one TLS handshake with the session CA),
// as they would with the upstream directly. curl's num_connects says how
// many connections each transfer opened.
func TestOneConnectionForUploadsAndGets(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	const size = 2 << 20
	secret := newSecret(t, "api")
	up := newUpstream(t, true)
	upload := `-w '%%{num_connects} %%{http_code}\n' -o /dev/null --expect100-timeout 10 -H 'Expect: 100-continue' --data-binary @"$OUT/up.bin" 'https://api.example.test/upload?id=%s'`
	script := fmt.Sprintf(`head -c %d /dev/urandom > "$OUT/up.bin"
curl -sS --max-time 30 `+upload+` --next `+upload+` --next -w '%%{num_connects} %%{http_code}\n' -o /dev/null 'https://api.example.test/ok' > "$OUT/ka.out" 2> "$OUT/ka.err"
rm -f "$OUT/up.bin"
`, size, "a", "b")
	s := runSession(t, sessionOpts{
		config:  apiConfig,
		env:     map[string]string{"TEST_API_TOKEN": secret},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		script:  script,
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	if got := strings.Fields(s.file("ka.out")); strings.Join(got, " ") != "1 200 0 200 0 200" {
		t.Fatalf("curl transfers (new connections, status): %q, want one connection for all three (curl: %s)", got, s.file("ka.err"))
	}
	for _, id := range []string{"a", "b"} {
		if n, ok := up.uploadedBytes(id); !ok || n != size {
			t.Errorf("upload %s: upstream read %d bytes, want %d", id, n, size)
		}
	}
	for _, r := range up.requests() {
		if r.Header.Get("Authorization") != "Bearer "+secret {
			t.Errorf("%s %s not injected", r.Method, r.Path)
		}
	}
	s.assertNoSecret(t, secret)
}
