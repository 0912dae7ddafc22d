package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordedRequest is what an upstream saw; tests assert on it.
type recordedRequest struct {
	Method   string      `json:"method"`
	Host     string      `json:"host"`
	Path     string      `json:"path"`
	RawQuery string      `json:"query"`
	Header   http.Header `json:"headers"`
	Body     string      `json:"body"`
	TLS      bool        `json:"tls"`
	// BodyErr is set when the body could not be read to its end: the
	// client (the proxy) aborted the request, so it was never delivered.
	BodyErr string `json:"body_error,omitempty"`
}

// upstream is a local server standing in for api.example.test and friends.
// Endpoints: /echo[/...], /ok[/...], /reflect, /sse, /ws, /upload, /download.
type upstream struct {
	Port int

	mu        sync.Mutex
	reqs      []recordedRequest
	sseWrites map[string][]int64 // ?id= -> UnixNano after each event was flushed
	uploaded  map[string]int64   // ?id= -> body bytes read by /upload
}

// newUpstream starts an HTTPS (useTLS) or plain-HTTP upstream on 127.0.0.1:0.
func newUpstream(t *testing.T, useTLS bool) *upstream {
	t.Helper()
	u := &upstream{sseWrites: map[string][]int64{}, uploaded: map[string]int64{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{
		Handler:           u,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          quietLog,
		// An empty map turns HTTP/2 off.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	if useTLS {
		srv.TLSConfig = testCA.serverTLS()
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := recordedRequest{
		Method:   r.Method,
		Host:     r.Host,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		TLS:      r.TLS != nil,
	}
	if r.URL.Path != "/upload" {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		rec.Body = string(body)
		if err != nil {
			rec.BodyErr = err.Error()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	u.mu.Lock()
	u.reqs = append(u.reqs, rec)
	u.mu.Unlock()

	switch {
	case r.URL.Path == "/echo" || strings.HasPrefix(r.URL.Path, "/echo/"):
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rec)
	case r.URL.Path == "/ok" || strings.HasPrefix(r.URL.Path, "/ok/"):
		// Reflects nothing, so a test about injection does not also
		// depend on the reflection guard.
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	case r.URL.Path == "/reflect":
		serveReflect(w, r)
	case r.URL.Path == "/sse":
		u.serveSSE(w, r)
	case r.URL.Path == "/ws":
		serveWebSocket(w, r)
	case r.URL.Path == "/upload":
		n, err := io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.uploaded[r.URL.Query().Get("id")] = n
		u.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"bytes":%d}`, n)
	case r.URL.Path == "/download":
		serveDownload(w, r)
	default:
		http.NotFound(w, r)
	}
}

// requests returns a copy of everything received so far.
func (u *upstream) requests() []recordedRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recordedRequest(nil), u.reqs...)
}

// find returns the requests whose path is exactly path.
func (u *upstream) find(path string) []recordedRequest {
	var out []recordedRequest
	for _, r := range u.requests() {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func (u *upstream) sseTimes(id string) []int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]int64(nil), u.sseWrites[id]...)
}

func (u *upstream) uploadedBytes(id string) (int64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n, ok := u.uploaded[id]
	return n, ok
}

// serveSSE: /sse?id=X&n=5&delay=200ms. The first event goes out right after
// the headers; the time of each flush is recorded for latency checks.
func (u *upstream) serveSSE(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	n = min(max(n, 1), 100)
	delay, err := time.ParseDuration(q.Get("delay"))
	if err != nil || delay > 5*time.Second {
		delay = 200 * time.Millisecond
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no flusher", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	for i := range n {
		if i > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "id: %d\ndata: event-%d\n\n", i, i)
		fl.Flush()
		now := time.Now().UnixNano()
		u.mu.Lock()
		u.sseWrites[q.Get("id")] = append(u.sseWrites[q.Get("id")], now)
		u.mu.Unlock()
	}
}

// serveReflect sends the bearer token it received back to the client, as a
// response header and inside a streamed body split across two flushes (the
// split falls in the middle of the token).
func serveReflect(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	fl, _ := w.(http.Flusher)
	w.Header().Set("X-Reflected-Token", tok)
	w.Header().Set("Content-Type", "text/plain")
	half := len(tok) / 2
	io.WriteString(w, "token="+tok[:half])
	if fl != nil {
		fl.Flush()
	}
	time.Sleep(50 * time.Millisecond)
	io.WriteString(w, tok[half:]+" end\n")
}

// serveDownload streams n bytes of a repeating pattern, with no
// Content-Length so the proxy cannot know the size in advance.
func serveDownload(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 || n > 1<<30 {
		http.Error(w, "bad n", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	chunk := bytes.Repeat([]byte("agentvault-e2e-"), 32<<10/15)
	for n > 0 {
		m := min(int64(len(chunk)), n)
		if _, err := w.Write(chunk[:m]); err != nil {
			return
		}
		n -= m
	}
}

// --- a minimal RFC 6455 echo server ---

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// serveTLS serves h over HTTPS/1.1 (HTTP/2 off: WebSocket upgrades hijack the
// connection) on a fresh 127.0.0.1 port until the test ends, and returns
// the port.
func serveTLS(t *testing.T, h http.Handler, cfg *tls.Config) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: quietLog, TLSConfig: cfg,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// acceptWebSocket answers a WebSocket handshake with a 101 that negotiates
// no extension (so the client sends plain frames) and hands over the
// connection, which closes within deadline; ok is false when the request
// was not a handshake (it was answered) or the connection failed.
func acceptWebSocket(w http.ResponseWriter, r *http.Request, deadline time.Duration) (net.Conn, *bufio.ReadWriter, bool) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !headerHasToken(r.Header, "Connection", "upgrade") ||
		!strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
		http.Error(w, "not a websocket handshake", http.StatusBadRequest)
		return nil, nil, false
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "no hijacker", http.StatusInternalServerError)
		return nil, nil, false
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, false
	}
	conn.SetDeadline(time.Now().Add(deadline))
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
	if brw.Flush() != nil {
		conn.Close()
		return nil, nil, false
	}
	return conn, brw, true
}

func serveWebSocket(w http.ResponseWriter, r *http.Request) {
	conn, brw, ok := acceptWebSocket(w, r, 20*time.Second)
	if !ok {
		return
	}
	defer conn.Close()
	for range 64 { // a test sends a handful of frames
		op, payload, err := wsReadFrame(brw.Reader)
		if err != nil {
			return
		}
		switch op {
		case 0x1, 0x2:
			err = wsWriteFrame(conn, op, payload)
		case 0x8:
			wsWriteFrame(conn, 0x8, payload)
			return
		case 0x9:
			err = wsWriteFrame(conn, 0xA, payload)
		}
		if err != nil {
			return
		}
	}
}

// wsReadFrame reads one (unfragmented) frame and unmasks it.
func wsReadFrame(r *bufio.Reader) (op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	op = hdr[0] & 0x0f
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(b[0])<<8 | uint64(b[1])
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = 0
		for _, c := range b {
			n = n<<8 | uint64(c)
		}
	}
	if n > 1<<20 {
		return 0, nil, errors.New("websocket frame too large")
	}
	var mask [4]byte
	masked := hdr[1]&0x80 != 0
	if masked {
		if _, err = io.ReadFull(r, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return op, payload, nil
}

// wsWriteFrame writes an unmasked (server-to-client) final frame.
func wsWriteFrame(w io.Writer, op byte, payload []byte) error {
	buf := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		buf = append(buf, byte(n))
	case n < 1<<16:
		buf = append(buf, 126, byte(n>>8), byte(n))
	default:
		buf = append(buf, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	_, err := w.Write(append(buf, payload...))
	return err
}

// quietLog drops net/http's per-connection noise (clients that hang up
// mid-handshake are expected in the guard tests).
var quietLog = log.New(io.Discard, "", 0)
