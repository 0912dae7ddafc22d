package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These need neither agentvault nor the CLIs: they prove the fake streams
// each API piece by piece and reassembles fragmented WebSocket messages, so
// a failing TestAgentCLIs points at agentvault or the CLI, not at the fake.

// fakeClient reaches every agent host at the fake, trusting its CA only.
func fakeClient(t *testing.T, f *agentFake) (*http.Client, *tls.Config) {
	t.Helper()
	pem, err := os.ReadFile(f.CAPath)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tlsConf := &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}}
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(f.Port))
	}
	return &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{DialContext: dial, TLSClientConfig: tlsConf, ForceAttemptHTTP2: false},
	}, tlsConf
}

// TestAgentFakeStreams: over SSE, each API's pieces arrive one by one, each
// before the next is written, and join to the answer.
func TestAgentFakeStreams(t *testing.T) {
	f := newAgentFake(t, "selftest")
	client, _ := fakeClient(t, f)
	tests := []struct {
		kind, url, body string
		piece           func(data map[string]any) (string, bool)
	}{
		{"anthropic", "https://api.anthropic.com/v1/messages", `{"model":"m","stream":true}`,
			func(d map[string]any) (string, bool) {
				delta, _ := d["delta"].(map[string]any)
				s, ok := delta["text"].(string)
				return s, ok && d["type"] == "content_block_delta"
			}},
		{"openai-sse", "https://api.openai.com/v1/responses", `{"model":"m","stream":true}`,
			func(d map[string]any) (string, bool) {
				s, ok := d["delta"].(string)
				return s, ok && d["type"] == "response.output_text.delta"
			}},
		{"gemini", "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse", `{}`,
			func(d map[string]any) (string, bool) {
				c, _ := d["candidates"].([]any)
				if len(c) == 0 {
					return "", false
				}
				parts, _ := c[0].(map[string]any)["content"].(map[string]any)["parts"].([]any)
				if len(parts) == 0 {
					return "", false
				}
				s, ok := parts[0].(map[string]any)["text"].(string)
				return s, ok
			}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			res, err := client.Post(tt.url, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var got []string
			var arrivals []int64
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				data, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				var d map[string]any
				if err := json.Unmarshal([]byte(data), &d); err != nil {
					t.Fatalf("event data is not JSON: %v", err)
				}
				if p, ok := tt.piece(d); ok {
					got = append(got, p)
					arrivals = append(arrivals, time.Now().UnixNano())
				}
			}
			if strings.Join(got, "") != f.answer() {
				t.Errorf("pieces %q, want them to join to %q", got, f.answer())
			}
			writes := f.streams(tt.kind)
			if len(writes) != 1 || len(writes[0]) != len(f.pieces) {
				t.Fatalf("recorded writes %v, want one stream of %d", writes, len(f.pieces))
			}
			for i := 0; i+1 < len(arrivals); i++ {
				if arrivals[i] >= writes[0][i+1] {
					t.Errorf("piece %d arrived after piece %d was written", i, i+1)
				}
			}
		})
	}
}

// TestAgentFakeWebSocket: a prewarm gets only response.completed; a
// response.create sent in three fragments with a ping between them gets the
// answer's events, one text message each.
func TestAgentFakeWebSocket(t *testing.T) {
	f := newAgentFake(t, "selftest")
	_, tlsConf := fakeClient(t, f)
	raw, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(f.Port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{RootCAs: tlsConf.RootCAs, ServerName: "api.openai.com", NextProtos: []string{"http/1.1"}})
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	keyb := make([]byte, 16)
	rand.Read(keyb)
	key := base64.StdEncoding.EncodeToString(keyb)
	fmt.Fprintf(c, "GET /v1/responses HTTP/1.1\r\nHost: api.openai.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 101 || res.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("handshake: %s, accept %q", res.Status, res.Header.Get("Sec-WebSocket-Accept"))
	}
	// frame writes one masked client frame.
	frame := func(fin bool, op byte, payload []byte) {
		b0 := op
		if fin {
			b0 |= 0x80
		}
		hdr := []byte{b0}
		switch n := len(payload); {
		case n < 126:
			hdr = append(hdr, 0x80|byte(n))
		default:
			hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
		}
		mask := []byte{1, 2, 3, 4}
		masked := make([]byte, len(payload))
		for i := range payload {
			masked[i] = payload[i] ^ mask[i%4]
		}
		if _, err := c.Write(append(append(hdr, mask...), masked...)); err != nil {
			t.Fatal(err)
		}
	}
	// next reads server messages until one of type want, returning the
	// text deltas seen on the way.
	next := func(want string) []string {
		var deltas []string
		for range 64 {
			op, payload, err := wsReadMessage(br)
			if err != nil {
				t.Fatalf("reading for %s: %v", want, err)
			}
			if op != 0x1 {
				continue
			}
			var ev struct{ Type, Delta string }
			if err := json.Unmarshal(payload, &ev); err != nil {
				t.Fatalf("message is not JSON: %v", err)
			}
			if ev.Type == "response.output_text.delta" {
				deltas = append(deltas, ev.Delta)
			}
			if ev.Type == want {
				return deltas
			}
		}
		t.Fatalf("no %s", want)
		return nil
	}

	frame(true, 0x1, []byte(`{"type":"response.create","model":"m","generate":false}`))
	if d := next("response.completed"); len(d) != 0 {
		t.Errorf("a prewarm got deltas %q", d)
	}
	msg := []byte(`{"type":"response.create","model":"m","input":"` + strings.Repeat("x", 300) + `"}`)
	frame(false, 0x1, msg[:100])
	frame(true, 0x9, []byte("ping"))
	frame(false, 0x0, msg[100:200])
	frame(true, 0x0, msg[200:])
	if d := next("response.completed"); strings.Join(d, "") != f.answer() {
		t.Errorf("deltas %q, want them to join to %q", d, f.answer())
	}
	in, out := f.wsBytes()
	if want := int64(len(msg) + len(`{"type":"response.create","model":"m","generate":false}`)); in != want {
		t.Errorf("the fake counted %d bytes received, want %d", in, want)
	}
	if out == 0 {
		t.Error("the fake counted no bytes sent")
	}
	frame(true, 0x8, []byte{0x03, 0xe8})
	io.Copy(io.Discard, br)
}
