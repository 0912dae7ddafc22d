package proxy

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"
)

// RFC 6455 opcodes.
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// RFC 6455 close codes the relay sends itself.
const (
	wsCloseProtocolError  = 1002
	wsClosePolicyViolated = 1008
)

// wsMaxControl is the largest control frame payload RFC 6455 allows.
const wsMaxControl = 125

// wsHeader is one frame header as read off the wire.
type wsHeader struct {
	fin    bool
	rsv    byte // the three reserved bits; no extension is ever negotiated, so they must be 0
	op     byte
	masked bool
	mask   [4]byte
	length uint64
	size   int // bytes the header took on the wire
}

func (h wsHeader) control() bool { return h.op&0x8 != 0 }

// wsProtocolError is a frame that breaks RFC 6455; the relay answers it by
// closing the connection, never by guessing what the sender meant.
type wsProtocolError struct{ why string }

func (e *wsProtocolError) Error() string { return "websocket protocol violation: " + e.why }

func wsViolation(format string, a ...any) error {
	return &wsProtocolError{why: fmt.Sprintf(format, a...)}
}

// readWSHeader reads one frame header. It checks only what is local to the
// header; wsCheck checks it against the state of the message in progress.
func readWSHeader(r *bufio.Reader) (wsHeader, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return wsHeader{}, err
	}
	h := wsHeader{fin: b[0]&0x80 != 0, rsv: b[0] & 0x70, op: b[0] & 0x0f, masked: b[1]&0x80 != 0, size: 2}
	switch n := b[1] & 0x7f; n {
	case 126:
		if _, err := io.ReadFull(r, b[:2]); err != nil {
			return h, unexpected(err)
		}
		h.length, h.size = uint64(binary.BigEndian.Uint16(b[:2])), h.size+2
	case 127:
		if _, err := io.ReadFull(r, b[:8]); err != nil {
			return h, unexpected(err)
		}
		h.length, h.size = binary.BigEndian.Uint64(b[:8]), h.size+8
		if h.length>>63 != 0 {
			return h, wsViolation("64-bit length with the most significant bit set")
		}
	default:
		h.length = uint64(n)
	}
	if h.masked {
		if _, err := io.ReadFull(r, h.mask[:]); err != nil {
			return h, unexpected(err)
		}
		h.size += 4
	}
	return h, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// wsCheck applies the rules a frame from one side must follow.
// fromClient: client frames must be masked, server frames must not be;
// inMessage: a fragmented data message is in progress.
func wsCheck(h wsHeader, fromClient, inMessage bool) error {
	switch {
	case h.rsv != 0:
		return wsViolation("reserved bits set without a negotiated extension")
	case fromClient && !h.masked:
		return wsViolation("unmasked frame from the client")
	case !fromClient && h.masked:
		return wsViolation("masked frame from the server")
	}
	switch h.op {
	case wsClose, wsPing, wsPong:
		if !h.fin || h.length > wsMaxControl {
			return wsViolation("fragmented or oversized control frame")
		}
		if h.op == wsClose && h.length == 1 {
			return wsViolation("close frame with a one-byte payload")
		}
	case wsText, wsBinary:
		if inMessage {
			return wsViolation("new data frame inside a fragmented message")
		}
	case wsContinuation:
		if !inMessage {
			return wsViolation("continuation frame outside a fragmented message")
		}
	default:
		return wsViolation("reserved opcode %#x", h.op)
	}
	return nil
}

// unmaskAt unmasks (or masks) b in place, b being the payload bytes that
// start at offset off within their frame.
func unmaskAt(b []byte, mask [4]byte, off uint64) {
	for i := range b {
		b[i] ^= mask[(off+uint64(i))&3]
	}
}

// appendWSHeader appends a frame header with the shortest length encoding.
func appendWSHeader(dst []byte, fin bool, op byte, length int, mask *[4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var m byte
	if mask != nil {
		m = 0x80
	}
	switch {
	case length <= 125:
		dst = append(dst, b0, m|byte(length))
	case length <= 0xffff:
		dst = append(dst, b0, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(length))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(length))
	}
	if mask != nil {
		dst = append(dst, mask[:]...)
	}
	return dst
}

// wsWriter writes whole frames to one side. Both relay directions may write
// to the client (the upstream's frames, and the relay's own close), so every
// frame goes out under a lock and is flushed at once. Frames to the server
// are masked with a fresh random key each: RFC 6455 requires a mask the
// server cannot predict, and reusing the client's would tie the two hops.
type wsWriter struct {
	mu     sync.Mutex
	w      *bufio.Writer
	masked bool
	buf    []byte
	closed bool // a close frame went out: RFC 6455 allows nothing after it
}

func (w *wsWriter) frame(fin bool, op byte, payload []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return io.ErrClosedPipe
	}
	if op == wsClose {
		w.closed = true
	}
	var mask *[4]byte
	if w.masked {
		mask = new([4]byte)
		if _, err := rand.Read(mask[:]); err != nil {
			return err
		}
	}
	w.buf = appendWSHeader(w.buf[:0], fin, op, len(payload), mask)
	start := len(w.buf)
	w.buf = append(w.buf, payload...)
	if mask != nil {
		unmaskAt(w.buf[start:], *mask, 0)
	}
	if _, err := w.w.Write(w.buf); err != nil {
		return err
	}
	return w.w.Flush()
}

// closePayload builds a close frame's payload: the code, then as much of
// reason as fits in a control frame without splitting a UTF-8 sequence.
func closePayload(code uint16, reason string) []byte {
	return trimControl(binary.BigEndian.AppendUint16(nil, code), []byte(reason))
}

// trimControl appends tail to head and cuts the result to a control
// frame's limit at a UTF-8 boundary (a close reason must be valid UTF-8).
func trimControl(head, tail []byte) []byte {
	room := wsMaxControl - len(head)
	if len(tail) > room {
		tail = tail[:room]
		for len(tail) > 0 && !utf8.Valid(tail) {
			tail = tail[:len(tail)-1]
		}
	}
	return append(head, tail...)
}
