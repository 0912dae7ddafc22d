package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// onResponse takes over writing the responses martian would delay or break:
// martian writes through a 4 KiB buffer flushed only at the end (so SSE events
// arrive all at once) and never flushes a 101 (so WebSockets hang).
func (p *Proxy) onResponse(res *http.Response) {
	req := res.Request
	if req == nil || req.Method == http.MethodConnect {
		return
	}
	ctx := ctxOf(req)
	if ctx == nil {
		return
	}
	sess := ctx.Session()
	var ex *exchange
	if v, ok := ctx.Get(keyEx); ok {
		ex = v.(*exchange)
	}
	// The reason phrase is upstream text the guards do not scan; a bound
	// upstream could reflect a secret there. The standard text replaces it.
	res.Status = ""
	if res.StatusCode == http.StatusSwitchingProtocols {
		p.relayUpgrade(sess, res, ex)
		return
	}
	if needsStreaming(req, res) {
		// HTTP/1.1 clients get it chunked on the same connection; HTTP/1.0
		// has no chunking, so the body ends where the connection does.
		if req.ProtoAtLeast(1, 1) && streamChunked(sess, res) {
			return
		}
		conn, brw, err := sess.Hijack()
		if err != nil {
			return
		}
		defer conn.Close() // martian drops later requests on a hijacked connection
		conn.SetDeadline(time.Time{})
		writeStreaming(brw.Writer, res, req)
	}
}

// needsStreaming reports whether the body must reach the client as it
// arrives: event streams and bodies of unknown length.
func needsStreaming(req *http.Request, res *http.Response) bool {
	if req.Method == http.MethodHead || res.StatusCode == http.StatusNoContent || res.StatusCode == http.StatusNotModified || res.StatusCode < 200 {
		return false
	}
	ct := strings.ToLower(res.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "text/event-stream") || res.ContentLength < 0
}

// writeStreaming writes res to w with a flush after every read of the body.
// Bodies of unknown length are sent chunked, so that the client sees a clean
// end even though the connection is closed without a TLS close_notify.
func writeStreaming(w *bufio.Writer, res *http.Response, req *http.Request) error {
	chunked := res.ContentLength < 0 && req.ProtoAtLeast(1, 1)
	h := res.Header.Clone()
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	h.Set("Connection", "close")
	if chunked {
		h.Set("Transfer-Encoding", "chunked")
	} else if res.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(res.ContentLength, 10))
	}
	writeStatusLine(w, res)
	h.Write(w)
	w.WriteString("\r\n")
	if err := w.Flush(); err != nil {
		return err
	}
	buf := make([]byte, 32*1024)
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if chunked {
				fmt.Fprintf(w, "%x\r\n", n)
			}
			w.Write(buf[:n])
			if chunked {
				w.WriteString("\r\n")
			}
			if err := w.Flush(); err != nil {
				res.Body.Close()
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			// Leave the chunked stream unterminated so the client sees the
			// failure instead of a short but well-formed body.
			res.Body.Close()
			return rerr
		}
	}
	res.Body.Close()
	if chunked {
		w.WriteString("0\r\n\r\n")
	}
	return w.Flush()
}

func writeStatusLine(w *bufio.Writer, res *http.Response) {
	text := res.Status
	if code := strconv.Itoa(res.StatusCode); strings.HasPrefix(text, code+" ") {
		text = strings.TrimPrefix(text, code+" ")
	} else {
		text = http.StatusText(res.StatusCode)
	}
	fmt.Fprintf(w, "HTTP/1.1 %03d %s\r\n", res.StatusCode, text)
}

// relayUpgrade completes a protocol switch. Only a WebSocket without
// extensions is relayed, and frame by frame through the guards
// (websocket_relay.go); anything else is refused with a 502, since raw bytes
// would carry secrets past both guards.
func (p *Proxy) relayUpgrade(sess clientConn, res *http.Response, ex *exchange) {
	defer res.Body.Close() // ends the exchange: its record is emitted here
	conn, brw, err := sess.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{})
	if ex == nil {
		ex = &exchange{start: time.Now()}
	}
	raw := res.Body
	if cb, ok := raw.(*countingBody); ok {
		raw = cb.rc // the relay counts frames itself; see countUpgraded
	}
	up, ok := raw.(io.ReadWriteCloser)
	why := unreadableUpgrade(res)
	if !ok {
		why = "upstream connection after the 101 is not writable"
	}
	if why != "" {
		ex.rec.Action, ex.rec.Status, ex.rec.Error = ActionError, http.StatusBadGateway, why
		refusal := textResponse(res.Request, http.StatusBadGateway, p.mask("agentvault: "+why+"\n"))
		refusal.Close = true
		refusal.Header.Set("Connection", "close")
		refusal.Write(brw.Writer)
		brw.Flush()
		return
	}
	if !p.Guard.reflectOff() {
		// guardResponse leaves a protocol switch's headers to the relay.
		redactFields(res.Header, p.reflectMatchers(true), ex)
	}
	res.Status = "" // the upstream's reason phrase could reflect a secret; the standard one says all
	writeStatusLine(brw.Writer, res)
	res.Header.Write(brw.Writer)
	brw.WriteString("\r\n")
	if brw.Flush() != nil {
		return
	}
	fromClient, fromUpstream := p.relayWebSocket(ex, conn, brw, up)
	ex.countUpgraded(fromClient, fromUpstream)
}

// serveExpectContinue answers "100 Continue" itself (martian does not relay
// it, so curl would stall a second on every upload), then runs the exchange to
// its end on the hijacked connection.
func (p *Proxy) serveExpectContinue(req *http.Request, sess clientConn, ex *exchange) {
	conn, brw, err := sess.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{})
	req.Header.Del("Expect")
	brw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	res := p.forward(req, sess, ex)
	if res.StatusCode == http.StatusSwitchingProtocols {
		res.Body.Close()
		return
	}
	if res.ContentLength < 0 {
		writeStreaming(brw.Writer, res, req)
		return
	}
	res.Close = true
	res.Header.Set("Connection", "close")
	res.Write(brw.Writer)
	brw.Flush()
	res.Body.Close()
}
