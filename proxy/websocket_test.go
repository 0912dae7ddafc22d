package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentvault/agentvault/internal/testsupport"
)

// The test side of a WebSocket is written here by hand, independently of
// websocket.go, so that a mistake in the relay's codec cannot cancel out.

const (
	wsPH      = "PH-api-0001"
	wsOther   = "other-secret-value-77"
	wsOtherPH = "PH-other-0002"
)

var clientMask = [4]byte{0x0a, 0x0b, 0x0c, 0x0d}

type tFrame struct {
	fin     bool
	rsv     byte
	op      byte
	masked  bool
	mask    [4]byte
	len64   bool // force the 64-bit length encoding
	payload []byte
}

func encodeFrame(f tFrame) []byte {
	b0 := f.op | f.rsv
	if f.fin {
		b0 |= 0x80
	}
	var m byte
	if f.masked {
		m = 0x80
	}
	n := len(f.payload)
	out := []byte{b0}
	switch {
	case f.len64 || n > 0xffff:
		out = binary.BigEndian.AppendUint64(append(out, m|127), uint64(n))
	case n > 125:
		out = binary.BigEndian.AppendUint16(append(out, m|126), uint16(n))
	default:
		out = append(out, m|byte(n))
	}
	p := append([]byte(nil), f.payload...)
	if f.masked {
		out = append(out, f.mask[:]...)
		for i := range p {
			p[i] ^= f.mask[i%4]
		}
	}
	return append(out, p...)
}

func decodeFrame(r *bufio.Reader) (tFrame, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return tFrame{}, err
	}
	f := tFrame{fin: b[0]&0x80 != 0, rsv: b[0] & 0x70, op: b[0] & 0x0f, masked: b[1]&0x80 != 0}
	n := uint64(b[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, b[:2]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:2]))
	case 127:
		if _, err := io.ReadFull(r, b[:8]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:8])
	}
	if n > 4<<20 {
		return f, errors.New("test frame too large")
	}
	if f.masked {
		if _, err := io.ReadFull(r, f.mask[:]); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= f.mask[i%4]
		}
	}
	return f, nil
}

// wsPeer is one end of a WebSocket in a test: the agent or the upstream.
type wsPeer struct {
	conn net.Conn
	br   *bufio.Reader
}

func (p *wsPeer) send(frames ...tFrame) error {
	var buf []byte
	for _, f := range frames {
		buf = append(buf, encodeFrame(f)...)
	}
	_, err := p.conn.Write(buf)
	return err
}

// event is what an endpoint made of the frames it read: a whole message or
// a control frame.
type event struct {
	op   byte
	data []byte
}

func (e event) String() string {
	return fmt.Sprintf("op %#x %.60q (%d bytes)", e.op, e.data, len(e.data))
}

// events reads until a close frame, an error or a bound, reassembling
// fragmented messages; frames keeps every frame as it arrived.
func (p *wsPeer) events(limit int) (evs []event, frames []tFrame, err error) {
	var msg *event
	for range limit {
		f, err := decodeFrame(p.br)
		if err != nil {
			return evs, frames, err
		}
		frames = append(frames, f)
		switch {
		case f.op >= 0x8:
			evs = append(evs, event{f.op, f.payload})
			if f.op == wsClose {
				return evs, frames, nil
			}
			continue
		case msg == nil:
			msg = &event{op: f.op}
		}
		msg.data = append(msg.data, f.payload...)
		if f.fin {
			evs = append(evs, *msg)
			msg = nil
		}
	}
	return evs, frames, errors.New("too many frames")
}

func closeFrame(code uint16, reason string, masked bool) tFrame {
	return tFrame{fin: true, op: wsClose, masked: masked, mask: clientMask, payload: append(binary.BigEndian.AppendUint16(nil, code), reason...)}
}

func text(s string) tFrame { return tFrame{fin: true, op: wsText, payload: []byte(s)} }

// masked is f as the agent sends it.
func masked(f tFrame) tFrame { f.masked, f.mask = true, clientMask; return f }

// wsUpstream is a scripted WebSocket server: it answers the handshake with a
// 101 (plus extra headers; ":reason" sets the reason phrase) and hands the connection to script. done closes
// when script returns; the handshakes it received are in seen.
func wsUpstream(t *testing.T, ca *testsupport.CA, useTLS bool, extra http.Header, script func(p *wsPeer)) (srv *httptest.Server, hs *seen, done chan struct{}) {
	t.Helper()
	done = make(chan struct{})
	hs = &seen{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.add(r.Clone(r.Context()))
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer close(done)
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		head := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"},
			"Sec-Websocket-Accept": {base64.StdEncoding.EncodeToString(sum[:])}}
		reason := "Switching Protocols"
		for k, vs := range extra {
			if k == ":reason" {
				reason = vs[0]
				continue
			}
			head[k] = vs
		}
		brw.WriteString("HTTP/1.1 101 " + reason + "\r\n")
		head.Write(brw)
		brw.WriteString("\r\n")
		if brw.Flush() != nil {
			return
		}
		script(&wsPeer{conn: conn, br: brw.Reader})
	})
	srv = httptest.NewUnstartedServer(h)
	if useTLS {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{issueLeaf(t, ca, "api.example.test")}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, hs, done
}

// wsProxy starts a proxy with two credentials: "api" (bearer on
// api.example.test) and "other" (bound to other.example.test), mapping
// api.example.test:443 and plain.example.test:80 to srv.
func wsProxy(t *testing.T, ca *testsupport.CA, srv *httptest.Server, g Guard) *harness {
	t.Helper()
	creds := []*Credential{
		{Name: "api", Placeholder: wsPH, Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secret)},
		{Name: "other", Placeholder: wsOtherPH, Hosts: []string{"other.example.test"}, Secret: staticSecret(wsOther)},
	}
	to := map[string]string{"api.example.test:443": hostPortOf(srv), "plain.example.test:80": hostPortOf(srv)}
	return startProxy(t, ca, creds, Egress{}, to, func(p *Proxy) { p.Guard = g })
}

// dialWS opens a WebSocket through the proxy as an agent would: CONNECT and
// TLS for api.example.test, or an absolute-form request for plain.example.test.
func dialWS(t *testing.T, h *harness, useTLS bool, hdr http.Header) (*wsPeer, *http.Response) {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	auth := basicAuthValue("agentvault", testPassword)
	var conn net.Conn = c
	br := bufio.NewReader(c)
	var head string
	if useTLS {
		fmt.Fprintf(c, "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\nProxy-Authorization: %s\r\n\r\n", auth)
		res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", res, err)
		}
		tc := tls.Client(c, &tls.Config{ServerName: "api.example.test", RootCAs: h.session.Pool, NextProtos: []string{"http/1.1"}})
		conn, br = tc, bufio.NewReader(tc)
		head = "GET /ws HTTP/1.1\r\nHost: api.example.test\r\n"
	} else {
		head = "GET http://plain.example.test/ws HTTP/1.1\r\nHost: plain.example.test\r\nProxy-Authorization: " + auth + "\r\n"
	}
	head += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for k, vs := range hdr {
		for _, v := range vs {
			head += k + ": " + v + "\r\n"
		}
	}
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatal(err)
	}
	return &wsPeer{conn: conn, br: br}, res
}

func waitDone(t *testing.T, done chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream script did not end")
	}
}

// recorder keeps the frames an upstream read, for assertions after it ended.
type recorder struct {
	mu     sync.Mutex
	frames []tFrame
}

func (r *recorder) all() []tFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tFrame(nil), r.frames...)
}

// echo is an upstream that records what it reads and answers data with the
// same data, ping with pong and close with close.
func echo(rec *recorder) func(p *wsPeer) {
	return func(p *wsPeer) {
		for range 200 {
			f, err := decodeFrame(p.br)
			if err != nil {
				return
			}
			rec.mu.Lock()
			rec.frames = append(rec.frames, f)
			rec.mu.Unlock()
			switch f.op {
			case wsPing:
				p.send(tFrame{fin: true, op: wsPong, payload: f.payload})
			case wsClose:
				p.send(tFrame{fin: true, op: wsClose, payload: f.payload})
				return
			case wsPong:
			default:
				p.send(tFrame{fin: f.fin, op: f.op, payload: f.payload})
			}
		}
	}
}

// TestWebSocketReflectionRedacted: whatever way the upstream reflects the
// real secret (a frame, fragments, a frame over 64 KiB whose read chunks
// split it, a close reason, a ping, the 101's headers), the agent sees the
// placeholder and never the secret, and the message is otherwise intact.
func TestWebSocketReflectionRedacted(t *testing.T) {
	ca := newTestCA(t, "upstream")
	big := func(with string) []byte {
		b := bytes.Repeat([]byte("a"), 70000)
		copy(b[wsChunk-7:], with) // straddles the relay's read chunks
		return b
	}
	tests := []struct {
		name   string
		extra  http.Header
		frames []tFrame // the upstream sends these, then a normal close
		want   []event  // what the agent must see before that close
	}{
		{name: "text frame", frames: []tFrame{text("key=" + secret + ".")},
			want: []event{{wsText, []byte("key=" + wsPH + ".")}}},
		{name: "split across two fragments", frames: []tFrame{
			{op: wsText, payload: []byte("key=" + secret[:9])},
			{fin: true, op: wsContinuation, payload: []byte(secret[9:] + ".")}},
			want: []event{{wsText, []byte("key=" + wsPH + ".")}}},
		{name: "split across three fragments with a ping between", frames: []tFrame{
			{op: wsBinary, payload: []byte(secret[:3])},
			{fin: true, op: wsPing, payload: []byte("hi")},
			{op: wsContinuation, payload: []byte(secret[3:15])},
			{fin: true, op: wsContinuation, payload: []byte(secret[15:])}},
			want: []event{{wsPing, []byte("hi")}, {wsBinary, []byte(wsPH)}}},
		{name: "frame with a 64-bit length", frames: []tFrame{{fin: true, op: wsBinary, len64: true, payload: big(secret)}},
			want: []event{{wsBinary, bytes.Replace(big(secret), []byte(secret), []byte(wsPH), 1)}}},
		{name: "secret in a ping", frames: []tFrame{{fin: true, op: wsPing, payload: []byte(secret)}},
			want: []event{{wsPing, []byte(wsPH)}}},
		{name: "101 header and reason phrase", extra: http.Header{"X-Echo": {"k=" + secret}, ":reason": {"Hi " + secret}},
			frames: []tFrame{text("ok")}, want: []event{{wsText, []byte("ok")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _, done := wsUpstream(t, ca, true, tc.extra, func(p *wsPeer) {
				p.send(append(tc.frames, closeFrame(1000, "bye "+secret, false))...)
				decodeFrame(p.br) // the agent's close
			})
			h := wsProxy(t, ca, srv, Guard{})
			ws, res := dialWS(t, h, true, nil)
			if res.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d", res.StatusCode)
			}
			if strings.Contains(fmt.Sprint(res.Status, res.Header), secret) {
				t.Errorf("101 status line or headers carry the secret: %s %v", res.Status, res.Header)
			}
			if tc.extra != nil && res.Header.Get("X-Echo") != "k="+wsPH {
				t.Errorf("X-Echo = %q, want the placeholder", res.Header.Get("X-Echo"))
			}
			evs, frames, err := ws.events(100)
			if err != nil {
				t.Fatalf("after %v: %v", evs, err)
			}
			ws.send(masked(closeFrame(1000, "", true)))
			waitDone(t, done)
			want := append(tc.want, event{wsClose, append([]byte{0x03, 0xe8}, "bye "+wsPH...)})
			if len(evs) != len(want) {
				t.Fatalf("agent got %v, want %v", evs, want)
			}
			for i := range want {
				if evs[i].op != want[i].op || !bytes.Equal(evs[i].data, want[i].data) {
					t.Errorf("event %d = %v, want %v", i, evs[i], want[i])
				}
			}
			for _, f := range frames {
				if f.masked || f.rsv != 0 {
					t.Errorf("frame to the agent masked=%v rsv=%#x", f.masked, f.rsv)
				}
			}
			rec := h.waitRecords(t, 1)[0]
			if !rec.Redacted || rec.Status != http.StatusSwitchingProtocols || rec.Action != ActionInject {
				t.Errorf("record = %+v, want inject, 101, redacted", rec)
			}
		})
	}
}

// TestWebSocketLeakBlocked: a message from the agent that carries a secret
// not bound to the upstream (another credential's, or any secret over plain
// ws://) never reaches it: the agent gets close 1008, both sides are closed
// and a leak_blocked record names the credential, never the value. With
// guard.leak warn the message passes and the record warns.
func TestWebSocketLeakBlocked(t *testing.T) {
	ca := newTestCA(t, "upstream")
	b64 := base64.StdEncoding.EncodeToString([]byte("user:" + wsOther))
	tests := []struct {
		name   string
		plain  bool
		warn   bool
		frames []tFrame
		cred   string
		leaked string // must not reach the upstream (when blocking)
	}{
		{name: "raw in one frame", frames: []tFrame{text("x " + wsOther + " y")}, cred: "other", leaked: wsOther},
		{name: "split across fragments", frames: []tFrame{
			{op: wsText, payload: []byte("x " + wsOther[:5])},
			{fin: true, op: wsContinuation, payload: []byte(wsOther[5:])}}, cred: "other", leaked: wsOther[5:]},
		{name: "base64 in a binary frame", frames: []tFrame{{fin: true, op: wsBinary, payload: []byte(b64)}}, cred: "other", leaked: b64},
		{name: "every byte percent-escaped, mixed hex case", frames: []tFrame{text("x " + mixedHexCase(fullPercentForms(wsOther)[0]))},
			cred: "other", leaked: mixedHexCase(fullPercentForms(wsOther)[0])},
		{name: "escapes mixing encoded and plain characters, split across fragments", frames: []tFrame{
			{op: wsText, payload: []byte("x " + mixedEscapes(wsOther, "0123456789abcdef")[:7])},
			{fin: true, op: wsContinuation, payload: []byte(mixedEscapes(wsOther, "0123456789abcdef")[7:])}},
			cred: "other", leaked: mixedEscapes(wsOther, "0123456789abcdef")[7:]},
		{name: "in a ping", frames: []tFrame{{fin: true, op: wsPing, payload: []byte(wsOther)}}, cred: "other", leaked: wsOther},
		{name: "in a close reason", frames: []tFrame{closeFrame(1000, wsOther, false)}, cred: "other", leaked: wsOther},
		{name: "bound secret over plain ws", plain: true, frames: []tFrame{text(secret)}, cred: "api", leaked: secret},
		{name: "warn passes it on", warn: true, frames: []tFrame{text("x " + wsOther)}, cred: "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			srv, _, done := wsUpstream(t, ca, !tc.plain, nil, echo(rec))
			g := Guard{}
			if tc.warn {
				g.Leak = "warn"
			}
			h := wsProxy(t, ca, srv, g)
			ws, res := dialWS(t, h, !tc.plain, nil)
			if res.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d", res.StatusCode)
			}
			for _, f := range tc.frames {
				ws.send(masked(f))
			}
			if tc.warn {
				ws.send(masked(closeFrame(1000, "", true)))
			}
			evs, _, _ := ws.events(100)
			waitDone(t, done)
			var upstreamGot []byte
			for _, f := range rec.all() {
				upstreamGot = append(upstreamGot, f.payload...)
			}
			r := h.waitRecords(t, 1)[0]
			if strings.Contains(fmt.Sprintf("%+v", r), wsOther) || strings.Contains(fmt.Sprintf("%+v", r), secret) {
				t.Fatalf("record carries a secret: %+v", r)
			}
			if !strings.Contains(r.Warning, fmt.Sprintf("%q", tc.cred)) {
				t.Errorf("warning %q does not name %q", r.Warning, tc.cred)
			}
			if tc.warn {
				if !bytes.Contains(upstreamGot, []byte(wsOther)) || r.Action != ActionInject {
					t.Errorf("warn: upstream got %q, record %+v", upstreamGot, r)
				}
				return
			}
			if bytes.Contains(upstreamGot, []byte(tc.leaked)) {
				t.Errorf("the upstream received the secret: %q", upstreamGot)
			}
			if len(evs) == 0 || evs[len(evs)-1].op != wsClose || len(evs[len(evs)-1].data) < 2 ||
				binary.BigEndian.Uint16(evs[len(evs)-1].data) != 1008 {
				t.Errorf("agent got %v, want a close 1008", evs)
			}
			if r.Action != ActionLeakBlocked || r.Credential != "" || r.Method != "GET" || r.Path != "/ws" {
				t.Errorf("record = %+v, want leak_blocked, no credential, GET /ws", r)
			}
			wantHost, wantPort := "api.example.test", 443
			if tc.plain {
				wantHost, wantPort = "plain.example.test", 80
			}
			if r.Host != wantHost || r.Port != wantPort {
				t.Errorf("record host %s:%d, want %s:%d", r.Host, r.Port, wantHost, wantPort)
			}
		})
	}
}

// TestWebSocketMasking: frames reach the upstream masked with a key of the
// relay's own (never the agent's), unmask to what the agent sent at every
// length encoding, and come back to the agent unmasked.
func TestWebSocketMasking(t *testing.T) {
	ca := newTestCA(t, "upstream")
	for _, n := range []int{0, 5, 125, 126, 300, 65535, 65536, 70000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			payload := make([]byte, n)
			for i := range payload {
				payload[i] = byte('a' + i%26)
			}
			rec := &recorder{}
			srv, _, done := wsUpstream(t, ca, true, nil, echo(rec))
			h := wsProxy(t, ca, srv, Guard{})
			ws, _ := dialWS(t, h, true, nil)
			ws.send(masked(tFrame{fin: true, op: wsBinary, payload: payload}), masked(closeFrame(1000, "", true)))
			evs, frames, err := ws.events(100)
			waitDone(t, done)
			if err != nil || len(evs) != 2 || !bytes.Equal(evs[0].data, payload) {
				t.Fatalf("agent got %v (%v), want the echo and a close", evs, err)
			}
			for _, f := range frames {
				if f.masked {
					t.Errorf("frame to the agent is masked")
				}
			}
			var got []byte
			for _, f := range rec.all() {
				if !f.masked || f.mask == clientMask {
					t.Errorf("frame to the upstream: masked=%v mask=%x (agent's %x)", f.masked, f.mask, clientMask)
				}
				if f.op != wsClose {
					got = append(got, f.payload...)
				}
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("upstream unmasked %d bytes, want the %d the agent sent", len(got), n)
			}
		})
	}
}

// TestWebSocketExtensions: the agent's offer of permessage-deflate never
// reaches the upstream (compressed frames would hide a secret from both
// guards), and an upstream that negotiates an extension anyway is refused
// with a 502 and an error record instead of being relayed.
func TestWebSocketExtensions(t *testing.T) {
	ca := newTestCA(t, "upstream")
	offer := http.Header{"Sec-Websocket-Extensions": {"permessage-deflate; client_max_window_bits"}}
	tests := []struct {
		name       string
		answer     http.Header
		wantStatus int
	}{
		{name: "offer stripped", wantStatus: http.StatusSwitchingProtocols},
		{name: "negotiated anyway", answer: http.Header{"Sec-Websocket-Extensions": {"permessage-deflate"}}, wantStatus: http.StatusBadGateway},
		{name: "another protocol", answer: http.Header{"Upgrade": {"not-websocket"}}, wantStatus: http.StatusBadGateway},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, hs, _ := wsUpstream(t, ca, true, tc.answer, func(p *wsPeer) { decodeFrame(p.br) })
			h := wsProxy(t, ca, srv, Guard{})
			ws, res := dialWS(t, h, true, offer)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.wantStatus)
			}
			if got := hs.all(); len(got) != 1 || got[0].Header.Get("Sec-WebSocket-Extensions") != "" {
				t.Errorf("upstream handshake carried the extension offer")
			}
			if tc.wantStatus == http.StatusSwitchingProtocols {
				ws.send(masked(closeFrame(1000, "", true)))
				return
			}
			r := h.waitRecords(t, 1)[0]
			if r.Action != ActionError || r.Status != http.StatusBadGateway || r.Error == "" {
				t.Errorf("record = %+v, want an error with status 502", r)
			}
		})
	}
}

// TestWebSocketProtocolViolations: a frame that breaks RFC 6455 from either
// side is not passed on: the agent gets close 1002 and the record says why.
func TestWebSocketProtocolViolations(t *testing.T) {
	ca := newTestCA(t, "upstream")
	tests := []struct {
		name       string
		fromServer []tFrame
		fromClient []tFrame // sent as is (the valid ones masked by the test)
	}{
		{name: "masked server frame", fromServer: []tFrame{{fin: true, op: wsText, masked: true, mask: clientMask, payload: []byte("x")}}},
		{name: "reserved bit without extension", fromServer: []tFrame{{fin: true, rsv: 0x40, op: wsText, payload: []byte("x")}}},
		{name: "continuation without a start", fromServer: []tFrame{{fin: true, op: wsContinuation, payload: []byte("x")}}},
		{name: "oversized ping", fromServer: []tFrame{{fin: true, op: wsPing, payload: bytes.Repeat([]byte("x"), 126)}}},
		{name: "fragmented ping", fromServer: []tFrame{{op: wsPing, payload: []byte("x")}}},
		{name: "reserved opcode", fromServer: []tFrame{{fin: true, op: 0x3, payload: []byte("x")}}},
		{name: "unmasked client frame", fromClient: []tFrame{text("x")}},
		{name: "new message inside a fragmented one", fromClient: []tFrame{
			masked(tFrame{op: wsText, payload: []byte("a")}), masked(text("b"))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			srv, _, done := wsUpstream(t, ca, true, nil, func(p *wsPeer) {
				p.send(tc.fromServer...)
				echo(rec)(p)
			})
			h := wsProxy(t, ca, srv, Guard{})
			ws, _ := dialWS(t, h, true, nil)
			ws.send(tc.fromClient...)
			evs, frames, _ := ws.events(100)
			waitDone(t, done)
			last := len(evs) - 1
			if last < 0 || evs[last].op != wsClose || binary.BigEndian.Uint16(evs[last].data) != 1002 {
				t.Fatalf("agent got %v, want a close 1002 at the end", evs)
			}
			// The violating frames carry "x" or "b": neither side may see them.
			for _, f := range append(frames, rec.all()...) {
				if p := string(f.payload); p == "x" || p == "b" || len(p) > 100 {
					t.Errorf("frame passed on: op %#x %q", f.op, p)
				}
			}
			if r := h.waitRecords(t, 1)[0]; !strings.Contains(r.Error, "RFC 6455") {
				t.Errorf("record error %q, want the violation", r.Error)
			}
		})
	}
}

// TestWebSocketRecordCountsBytes: the record carries the bytes read from
// each side after the upgrade, not only those of the handshake.
func TestWebSocketRecordCountsBytes(t *testing.T) {
	ca := newTestCA(t, "upstream")
	rec := &recorder{}
	srv, _, done := wsUpstream(t, ca, true, nil, echo(rec))
	h := wsProxy(t, ca, srv, Guard{})
	ws, _ := dialWS(t, h, true, nil)
	sent := []tFrame{masked(text("hello")), masked(tFrame{fin: true, op: wsBinary, payload: make([]byte, 300)}), masked(closeFrame(1000, "", true))}
	var fromClient, fromUpstream int
	for _, f := range sent {
		fromClient += len(encodeFrame(f))
		f.masked = false
		fromUpstream += len(encodeFrame(f))
	}
	ws.send(sent...)
	if _, _, err := ws.events(100); err != nil {
		t.Fatal(err)
	}
	waitDone(t, done)
	r := h.waitRecords(t, 1)[0]
	if r.ReqBytes != int64(fromClient) || r.RespBytes != int64(fromUpstream) {
		t.Errorf("record req_bytes=%d resp_bytes=%d, want %d and %d", r.ReqBytes, r.RespBytes, fromClient, fromUpstream)
	}
}

// TestWSHeaderLengths: every length encoding reads back as written, and a
// 64-bit length with its top bit set is a violation.
func TestWSHeaderLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 33} {
		for _, mask := range []*[4]byte{nil, &clientMask} {
			b := appendWSHeader(nil, true, wsBinary, n, mask)
			h, err := readWSHeader(bufio.NewReader(bytes.NewReader(b)))
			if err != nil || h.length != uint64(n) || h.size != len(b) || h.masked != (mask != nil) || !h.fin || h.op != wsBinary {
				t.Errorf("n=%d masked=%v: read %+v, %v", n, mask != nil, h, err)
			}
		}
	}
	bad := append([]byte{0x82, 127}, 0x80, 0, 0, 0, 0, 0, 0, 1)
	var pe *wsProtocolError
	if _, err := readWSHeader(bufio.NewReader(bytes.NewReader(bad))); !errors.As(err, &pe) {
		t.Errorf("top bit set: err %v, want a protocol violation", err)
	}
}
