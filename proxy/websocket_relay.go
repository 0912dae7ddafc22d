package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// wsChunk is the most payload a direction reads at once: a frame of any
// length streams through in pieces, so memory per connection stays bounded.
const wsChunk = 32 << 10

// wsRelay carries one upgraded WebSocket connection frame by frame, with the
// guards applied as to bodies: the leak guard on what the agent sends, the
// reflection guard on what comes back. Frames are parsed and written anew,
// so a replacement may change a frame's length and messages may be
// re-fragmented (RFC 6455 section 5.4 allows it when no extension is in use,
// and the handshake is made to negotiate none).
type wsRelay struct {
	p      *Proxy
	ex     *exchange
	conn   net.Conn // the agent's connection (raw TCP under a MITM session)
	up     io.Closer
	client *wsWriter
	server *wsWriter

	mu     sync.Mutex // ex.rec, while both directions run
	warned map[string]bool

	stopMu sync.Mutex // the first direction to stop closes both sides
	done   bool
}

// wsDir is one direction of the relay. Only its own goroutine touches it
// until the relay has ended.
type wsDir struct {
	fromClient bool
	src        *bufio.Reader
	dst        *wsWriter
	n          int64                                      // bytes read from src since the upgrade
	matcher    func() *matcher                            // built anew per message, so rotated values count
	process    func(m *matcher, b []byte) ([]byte, error) // the guard: rewrite b, or stop with an error
}

// wsLeak stops a client message that carries another host's secret.
type wsLeak struct{ cred *credential }

func (e *wsLeak) Error() string { return "websocket message carries the secret of " + e.cred.Name }

// relayWebSocket runs both directions until either side ends, then closes
// both. It returns the bytes read from each side.
func (p *Proxy) relayWebSocket(ex *exchange, conn net.Conn, brw *bufio.ReadWriter, up io.ReadWriteCloser) (fromClient, fromUpstream int64) {
	r := &wsRelay{p: p, ex: ex, conn: conn, up: up,
		client: &wsWriter{w: brw.Writer},
		server: &wsWriter{w: bufio.NewWriterSize(up, wsChunk), masked: true},
	}
	c2s := &wsDir{fromClient: true, src: brw.Reader, dst: r.server, matcher: r.leakMatcher, process: r.leak}
	s2c := &wsDir{src: bufio.NewReaderSize(up, wsChunk), dst: r.client, matcher: r.reflectMatcher, process: r.redact}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.stop(c2s, r.pump(c2s))
	}()
	r.stop(s2c, r.pump(s2c))
	wg.Wait()
	return c2s.n, s2c.n
}

// pump relays the frames of one direction until an error (io.EOF included).
// Data frames stream through the guard's scanner; what it holds back is
// released at the latest when the message ends (FIN, a public fact).
// Control frames are small and whole, and are guarded whole.
func (r *wsRelay) pump(d *wsDir) error {
	buf := make([]byte, wsChunk)
	var (
		inMessage, started bool
		op                 byte
		scan               *wsScan
	)
	for {
		h, err := readWSHeader(d.src)
		d.n += int64(h.size)
		if err != nil {
			return err
		}
		if err := wsCheck(h, d.fromClient, inMessage); err != nil {
			return err
		}
		if h.control() {
			payload := make([]byte, h.length)
			if _, err := io.ReadFull(d.src, payload); err != nil {
				return unexpected(err)
			}
			d.n += int64(h.length)
			if h.masked {
				unmaskAt(payload, h.mask, 0)
			}
			out, err := guardControl(d, h.op, payload)
			if err != nil {
				return err
			}
			if err := d.dst.frame(true, h.op, out); err != nil {
				return err
			}
			continue
		}
		if !inMessage {
			inMessage, started, op = true, false, h.op
			scan = &wsScan{m: d.matcher(), process: d.process}
		}
		for off := uint64(0); ; {
			chunk := buf[:min(h.length-off, uint64(len(buf)))]
			if _, err := io.ReadFull(d.src, chunk); err != nil {
				return unexpected(err)
			}
			d.n += int64(len(chunk))
			if h.masked {
				unmaskAt(chunk, h.mask, off)
			}
			off += uint64(len(chunk))
			end := h.fin && off == h.length
			out, err := scan.push(chunk, end)
			if err != nil {
				return err
			}
			if len(out) > 0 || end {
				fop := byte(wsContinuation)
				if !started {
					fop, started = op, true
				}
				if err := d.dst.frame(end, fop, out); err != nil {
					return err
				}
			}
			if off == h.length {
				break
			}
		}
		if h.fin {
			inMessage = false
		}
	}
}

// guardControl applies the direction's guard to a control frame's payload;
// of a close frame, to the reason after the status code.
func guardControl(d *wsDir, op byte, payload []byte) ([]byte, error) {
	head, body := []byte(nil), payload
	if op == wsClose && len(payload) >= 2 {
		head, body = payload[:2:2], payload[2:]
	}
	out, err := d.process(d.matcher(), body)
	if err != nil {
		return nil, err
	}
	if len(head)+len(out) <= wsMaxControl {
		return append(head, out...), nil
	}
	// A placeholder longer than the secret it replaced can push the frame
	// over the limit: cut the end (never the placeholder's start, which
	// is all the agent needs to see).
	if op == wsClose {
		return trimControl(head, out), nil
	}
	return out[:wsMaxControl], nil
}

// stop ends the relay after one direction returned err: a blocked leak or a
// protocol violation is recorded and answered with a close frame to the
// agent; then both connections are closed, which also ends the other
// direction. What the first direction to stop says reaches the agent before
// anything is closed.
func (r *wsRelay) stop(d *wsDir, err error) {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	var leak *wsLeak
	var bad *wsProtocolError
	switch {
	case errors.As(err, &leak):
		// Nothing more reaches the upstream: this direction is its only
		// writer, and it ends here.
		r.mu.Lock()
		r.ex.rec.Action, r.ex.rec.Credential = ActionLeakBlocked, ""
		r.ex.addWarning(fmt.Sprintf("secret of %q in a WebSocket message headed to %s, which it is not bound to; connection closed", leak.cred.Name, r.ex.rec.Host))
		r.mu.Unlock()
		r.closeClient(wsClosePolicyViolated, "agentvault: a secret bound to another host")
	case errors.As(err, &bad):
		side := "upstream"
		if d.fromClient {
			side = "client"
		}
		r.mu.Lock()
		if r.ex.rec.Error != "" {
			r.ex.rec.Error += "; "
		}
		r.ex.rec.Error += fmt.Sprintf("WebSocket closed: the %s broke RFC 6455 (%s)", side, bad.why)
		r.mu.Unlock()
		r.closeClient(wsCloseProtocolError, "agentvault: "+bad.why)
	}
	if !r.done {
		r.done = true
		r.conn.Close()
		r.up.Close()
	}
}

// closeClient sends the agent a close frame of the relay's own, with a
// deadline, so an agent that stopped reading cannot hold the relay open.
func (r *wsRelay) closeClient(code uint16, reason string) {
	if r.done {
		return
	}
	r.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	r.client.frame(true, wsClose, closePayload(code, reason))
}

// reflectMatcher finds secrets in what the upstream sends back.
func (r *wsRelay) reflectMatcher() *matcher {
	if r.p.Guard.reflectOff() {
		return &matcher{}
	}
	return newMatcher(r.p.policy.creds, reflectForms)
}

// leakMatcher finds the secrets that must not travel to this upstream: on a
// plain ws:// connection, every one.
func (r *wsRelay) leakMatcher() *matcher {
	if r.p.Guard.leakOff() {
		return &matcher{}
	}
	port := r.ex.rec.Port
	if r.ex.rec.Scheme != "https" {
		port = -1
	}
	return newMatcher(r.p.unboundCreds(r.ex.rec.Host, port), leakForms)
}

// redact replaces each complete reflected secret with its placeholder.
func (r *wsRelay) redact(m *matcher, b []byte) ([]byte, error) {
	for i := range m.needles {
		if n := &m.needles[i]; n.in(b) {
			b = n.replace(b, n.cred.Placeholder)
			r.ex.redacted.Store(true)
		}
	}
	return b, nil
}

// leak stops a message carrying a complete secret of another host, or with
// guard.leak "warn" lets it pass and notes it once per credential.
func (r *wsRelay) leak(m *matcher, b []byte) ([]byte, error) {
	c := m.findLeak(b)
	if c == nil {
		return b, nil
	}
	if r.p.Guard.leakBlocks() {
		return nil, &wsLeak{cred: c}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.warned[c.Name] {
		if r.warned == nil {
			r.warned = map[string]bool{}
		}
		r.warned[c.Name] = true
		r.ex.addWarning(fmt.Sprintf("secret of %q in a WebSocket message headed to %s, which it is not bound to", c.Name, r.ex.rec.Host))
	}
	return b, nil
}

// wsScan is scanReader's hold-back rule (scan.go) in push form: the relay,
// not a reader, learns where a message ends, and must then release
// everything. Only the matcher's holdback decides what waits for more bytes.
type wsScan struct {
	m       *matcher
	process func(*matcher, []byte) ([]byte, error)
	pending []byte
	buf     []byte
}

// push guards pending+b and returns what may be forwarded now; the result
// is valid until the next push. end releases everything.
func (s *wsScan) push(b []byte, end bool) ([]byte, error) {
	s.buf = append(append(s.buf[:0], s.pending...), b...)
	out, err := s.process(s.m, s.buf)
	if err != nil {
		s.pending = nil
		return nil, err
	}
	keep := 0
	if !end {
		keep = s.m.holdback(out)
	}
	cut := len(out) - keep
	s.pending = append(s.pending[:0], out[cut:]...)
	return out[:cut], nil
}

// unreadableUpgrade says why a 101 cannot be relayed through the guards, or
// returns "". Only WebSocket without extensions can be read frame by frame:
// any other protocol, or a compressed WebSocket, would carry secrets past
// both guards unseen.
func unreadableUpgrade(res *http.Response) string {
	if up := res.Header.Get("Upgrade"); !strings.EqualFold(strings.TrimSpace(up), "websocket") {
		return fmt.Sprintf("upgrade to %q cannot be inspected", up)
	}
	for _, v := range res.Header.Values("Sec-WebSocket-Extensions") {
		if strings.TrimSpace(v) != "" {
			name := strings.TrimSpace(strings.SplitN(v, ";", 2)[0])
			return fmt.Sprintf("upstream negotiated the WebSocket extension %q, which the guards cannot read", name)
		}
	}
	return ""
}

// countUpgraded makes the record carry the bytes relayed after the upgrade:
// finish takes req_bytes from the request body's counter when there is one
// and resp_bytes from the response body's, which the relay reads around.
func (ex *exchange) countUpgraded(fromClient, fromUpstream int64) {
	if ex.reqBody != nil {
		ex.reqBody.n.Add(fromClient)
	} else {
		ex.rec.ReqBytes += fromClient
	}
	if ex.respBody != nil {
		ex.respBody.n.Add(fromUpstream)
	} else {
		ex.rec.RespBytes += fromUpstream
	}
}
