package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// wsReflector is an HTTPS upstream on 127.0.0.1 that, once the agent's first
// message arrives, sends back the Authorization header the proxy injected:
// split across two fragments of one text message (the second with a 16-bit
// length), and again as the close reason. It returns the port and the
// headers of each handshake it received.
func wsReflector(t *testing.T) (int, chan http.Header) {
	t.Helper()
	got := make(chan http.Header, 4)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, ok := acceptWebSocket(w, r, 20*time.Second)
		if !ok {
			return
		}
		defer conn.Close()
		got <- r.Header.Clone()
		if _, _, err := wsReadFrame(brw.Reader); err != nil {
			return
		}
		auth := r.Header.Get("Authorization")
		cut := len(auth) / 2
		var out []byte
		out = append(out, serverFrame(false, 0x1, "auth="+auth[:cut])...)
		out = append(out, serverFrame(true, 0x0, auth[cut:]+" "+strings.Repeat(".", 200))...)
		out = append(out, serverFrame(true, 0x8, "\x03\xe8bye "+auth)...)
		if _, err := conn.Write(out); err != nil {
			return
		}
		wsReadFrame(brw.Reader) // the agent's close
	})
	return serveTLS(t, h, testCA.serverTLS()), got
}

// serverFrame encodes an unmasked frame with the shortest length form.
func serverFrame(fin bool, op byte, payload string) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	n := len(payload)
	buf := []byte{b0}
	switch {
	case n < 126:
		buf = append(buf, byte(n))
	case n < 1<<16:
		buf = append(buf, 126, byte(n>>8), byte(n))
	default:
		buf = append(buf, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(buf, payload...)
}

// TestWebSocketReflectionRedacted: an upstream reflects the real key it got
// in the handshake back into WebSocket frames (fragmented, and in the close
// reason), as a provider talking to codex could. The child, a Go WebSocket
// client behind the built binary, sees only its placeholder, and the audit
// record says the response was redacted and counts the bytes relayed.
func TestWebSocketReflectionRedacted(t *testing.T) {
	needBinary(t)
	secret := newSecret(t, "api")
	port, handshakes := wsReflector(t)
	s := runSession(t, sessionOpts{
		config:  apiConfig,
		env:     map[string]string{"TEST_API_TOKEN": secret},
		connect: []string{connectTo("api.example.test", 443, port)},
		flags:   []string{"--summary", "plain"},
		script: fmt.Sprintf(`'%s' wsread 'wss://api.example.test/ws-reflect' hello "$OUT/wsread.json" 2> "$OUT/wsread.err"`+"\n",
			goClientBin),
	})
	if s.code != 0 {
		t.Fatalf("exit %d; client: %s; agentvault: %s", s.code, s.file("wsread.err"), clip(s.stderr))
	}
	ph := s.placeholder(t, "API_TOKEN")
	select {
	case hs := <-handshakes:
		if hs.Get("Authorization") != "Bearer "+secret {
			t.Fatalf("upstream handshake Authorization = %q, want Bearer <secret>", redact(hs.Get("Authorization"), secret, ph))
		}
	default:
		t.Fatal("upstream saw no handshake")
	}
	var res struct {
		Status      int      `json:"status"`
		Messages    []string `json:"messages"`
		CloseCode   int      `json:"close_code"`
		CloseReason string   `json:"close_reason"`
	}
	if err := json.Unmarshal([]byte(s.file("wsread.json")), &res); err != nil {
		t.Fatalf("client result: %v (%s)", err, s.file("wsread.err"))
	}
	want := "auth=Bearer " + ph + " " + strings.Repeat(".", 200)
	if res.Status != 101 || len(res.Messages) != 1 || res.Messages[0] != want {
		t.Errorf("child got status %d, messages %q; want 101 and %q",
			res.Status, redact(strings.Join(res.Messages, "|"), secret, ph), want)
	}
	if res.CloseCode != 1000 || res.CloseReason != "bye Bearer "+ph {
		t.Errorf("child got close %d %q, want 1000 with the placeholder", res.CloseCode, redact(res.CloseReason, secret, ph))
	}
	recs := auditFind(s.audit, map[string]any{"path": "/ws-reflect"})
	if len(recs) != 1 {
		t.Fatalf("want one audit record for /ws-reflect, got %v", recs)
	}
	r := recs[0]
	if r["redacted"] != true || r["status"] != float64(101) || r["action"] != "inject" {
		t.Errorf("audit record %v, want inject, 101, redacted", r)
	}
	if n, _ := r["req_bytes"].(float64); n <= 0 {
		t.Errorf("audit req_bytes = %v, want the frames the child sent", r["req_bytes"])
	}
	if n, _ := r["resp_bytes"].(float64); n < 200 {
		t.Errorf("audit resp_bytes = %v, want the frames the upstream sent", r["resp_bytes"])
	}
	// The summary shows the session as a WebSocket with how long it was open,
	// not as an empty informational response.
	if !regexp.MustCompile(`ws:1 \([0-9.]+m?s\)`).MatchString(s.stderr) {
		t.Errorf("summary does not show the WebSocket session as ws with its duration:\n%s", clip(s.stderr))
	}
	s.assertNoSecret(t, secret)
	s.assertNoPlaceholder(t, ph)
}
