package proxy

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The leak guard on a compressed request body (Content-Encoding: gzip,
// deflate, stacked). The body goes to the upstream as the client sent it,
// compressed; the guard decodes a copy of it as it streams and releases a
// compressed byte only once everything a decoder could make of the bytes up
// to it has been scanned. Go's decoders read their input one byte at a time
// when given an io.ByteReader, so how far each one has read is exact; what
// the bytes read so far determine but the decoder has not yet handed out is
// bounded (its 32 KiB window, a pending copy, the symbols in its bit buffer):
// codingSlack. When release is held back, and by how much, depends on the
// compressed stream's structure and lengths alone, never on a match.

// codingSlack bounds, per layer, the decoded bytes that the input a decoder
// has read determines beyond what it has returned: a 32 KiB window not yet
// flushed, the rest of a 258-byte copy, and the few symbols left in its bit
// buffer (at most 21 bits: ten copies). Doubled for margin.
const codingSlack = 64 << 10

// maxHeldCoded caps the compressed bytes held back; a stream that produces
// no output for longer (empty blocks, one endless header) is unreadable.
const maxHeldCoded = 1 << 20

// The decompression-bomb cap: a layer may produce at most maxDecodedBase
// bytes plus maxDecodedRatio per byte of the body as sent; past that the
// body is unreadable. A variable for the tests.
var maxDecodedBase int64 = 64 << 20

const maxDecodedRatio = 100

// errUnreadable stops a compressed request body the leak guard cannot read
// to its end (corrupt, a bomb, data after the last coded stream).
var errUnreadable = errors.New("agentvault: request body the leak guard cannot read")

// requestDecoders open the codings a request body may carry. Unlike the
// response side's, each is handed an io.ByteReader and must not read ahead.
var requestDecoders = map[string]func(*feed) (io.Reader, error){
	"gzip":    func(f *feed) (io.Reader, error) { return newGzipReader(f) },
	"x-gzip":  func(f *feed) (io.Reader, error) { return newGzipReader(f) },
	"deflate": openDeflate,
}

// openDeflate reads HTTP "deflate": zlib-wrapped, or raw DEFLATE from some
// clients. The first two bytes are looked at without being taken.
func openDeflate(f *feed) (io.Reader, error) {
	head, err := f.peek(2)
	if len(head) == 2 && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
		return zlib.NewReader(f)
	}
	if len(head) == 0 && err != nil {
		return nil, err
	}
	return flate.NewReader(f), nil
}

// requestCodings returns a request's content codings in the order they were
// applied, or why the leak guard cannot undo them.
func requestCodings(h http.Header, host string) ([]string, string) {
	var out []string
	awsChunked := false
	for _, v := range h.Values("Content-Encoding") {
		for _, part := range strings.Split(v, ",") {
			name := strings.ToLower(strings.TrimSpace(part))
			switch {
			case name == "" || name == "identity":
				continue
			case name == "aws-chunked":
				// S3's signed chunk framing (sigv4.go): the data lies
				// between the chunk headers as it is, scanned as sent.
				awsChunked = true
				continue
			case requestDecoders[name] == nil:
				return nil, fmt.Sprintf("request body in content coding %q, which the leak guard cannot read, headed to %s", printableToken(name), host)
			}
			out = append(out, name)
		}
	}
	if awsChunked && len(out) > 0 {
		return nil, fmt.Sprintf("request body in content coding %q inside aws-chunked framing, which the leak guard cannot read, headed to %s", out[0], host)
	}
	if len(out) > maxCodings {
		return nil, fmt.Sprintf("request body with %d stacked content codings (the leak guard reads at most %d) headed to %s", len(out), maxCodings, host)
	}
	return out, ""
}

// feed hands a decoder its input one byte at a time if it likes, counting
// what it took (given). The first layer's feed also keeps the body's bytes
// from the last one released to the upstream on (keep).
type feed struct {
	src   io.Reader
	buf   []byte // buf[pos:] is read from src and not yet given
	pos   int
	given int64
	base  int64 // the stream offset of buf[0]
	keep  bool  // buf[:pos] is kept until released to the upstream
	rel   int64 // with keep: the stream offset up to which bytes are released
	err   error
	limit int // with keep: the most bytes held (read and not released); 0: no limit
}

func (f *feed) fill() error {
	if f.pos < len(f.buf) {
		return nil
	}
	if f.err != nil {
		return f.err
	}
	if !f.keep {
		f.base += int64(len(f.buf))
		f.buf, f.pos = f.buf[:0], 0
	} else if held := int64(len(f.buf)) - (f.rel - f.base); f.limit > 0 && held >= int64(f.limit) {
		f.err = errUnreadable
		return f.err
	}
	if cap(f.buf)-len(f.buf) < 4<<10 {
		f.compact()
	}
	if cap(f.buf)-len(f.buf) < 4<<10 {
		nb := make([]byte, len(f.buf), max(2*cap(f.buf), 32<<10))
		copy(nb, f.buf)
		f.buf = nb
	}
	for i := 0; i < 100; i++ {
		n, err := f.src.Read(f.buf[len(f.buf):cap(f.buf)])
		f.buf = f.buf[:len(f.buf)+n]
		if err != nil {
			f.err = err
		}
		if n > 0 || err != nil {
			break
		}
	}
	if f.pos < len(f.buf) {
		return nil
	}
	if f.err == nil {
		f.err = io.ErrNoProgress
	}
	return f.err
}

func (f *feed) ReadByte() (byte, error) {
	if err := f.fill(); err != nil {
		return 0, err
	}
	c := f.buf[f.pos]
	f.pos++
	f.given++
	return c, nil
}

func (f *feed) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.fill(); err != nil {
		return 0, err
	}
	n := copy(p, f.buf[f.pos:])
	f.pos += n
	f.given += int64(n)
	return n, nil
}

// peek returns up to n bytes without giving them.
func (f *feed) peek(n int) ([]byte, error) {
	for i := 0; len(f.buf)-f.pos < n && i < 100; i++ {
		if f.err != nil {
			break
		}
		// Read more after what is there: fill only reads when empty.
		if cap(f.buf)-len(f.buf) < n {
			nb := make([]byte, len(f.buf), len(f.buf)+32<<10)
			copy(nb, f.buf)
			f.buf = nb
		}
		m, err := f.src.Read(f.buf[len(f.buf):cap(f.buf)])
		f.buf = f.buf[:len(f.buf)+m]
		if err != nil {
			f.err = err
		}
	}
	return f.buf[f.pos:min(len(f.buf), f.pos+n)], f.err
}

// release notes that a kept feed's bytes before stream offset off went to
// the upstream; compact forgets them when room is needed.
func (f *feed) release(off int64) { f.rel = max(f.rel, off) }

func (f *feed) compact() {
	k := int(f.rel - f.base)
	if !f.keep || k <= 0 {
		return
	}
	n := copy(f.buf, f.buf[k:])
	f.buf, f.pos, f.base = f.buf[:n], max(f.pos-k, 0), f.rel
}

// mark is a layer's progress after one read: it had taken in bytes of its
// input and handed out out bytes.
type mark struct{ in, out int64 }

// layer is one decoder of the stack, with its progress marks.
type layer struct {
	in    *feed
	dec   io.Reader
	open  func(*feed) (io.Reader, error)
	out   int64
	marks []mark // oldest first; marks[0] is the last one known safe
	cap   func() int64
}

func (l *layer) Read(p []byte) (int, error) {
	if l.dec == nil {
		d, err := l.open(l.in)
		if err == io.EOF && l.in.given == 0 && len(l.in.buf) == l.in.pos {
			return 0, io.EOF // no input at all: nothing to decode
		}
		if err != nil {
			return 0, decodeErr(err)
		}
		l.dec = d
	}
	n, err := l.dec.Read(p)
	l.out += int64(n)
	if l.out > l.cap() {
		return n, errUnreadable
	}
	if n > 0 {
		l.addMark(mark{l.in.given, l.out})
	}
	if err == io.EOF {
		return n, err
	}
	return n, decodeErr(err)
}

// decodeErr: any decoder failure makes the body unreadable; the source's
// own failure (the client went away) is passed on as it is.
func decodeErr(err error) error {
	if err == nil || errors.Is(err, errUnreadable) {
		return err
	}
	var se srcErr
	if errors.As(err, &se) {
		return se // unwrapped by the reader of the last layer
	}
	return errUnreadable
}

// maxMarks bounds a layer's marks; thinning them only makes release later.
const maxMarks = 256

func (l *layer) addMark(m mark) {
	if len(l.marks) >= maxMarks {
		// Keep the safe one and every other later one.
		thin := l.marks[:1]
		for i := 2; i < len(l.marks); i += 2 {
			thin = append(thin, l.marks[i])
		}
		l.marks = thin
	}
	l.marks = append(l.marks, m)
}

// safeIn is how much of the layer's input may be revealed when its output up
// to safeOut has been scanned: the input taken by the latest mark whose
// output, plus what that input could still hold, is within safeOut.
func (l *layer) safeIn(safeOut int64) int64 {
	k := 0
	for k+1 < len(l.marks) && l.marks[k+1].out+codingSlack <= safeOut {
		k++
	}
	l.marks = l.marks[k:]
	return l.marks[0].in
}

// srcErr carries the client's own read error through the decoders, so that
// it is not mistaken for a corrupt body.
type srcErr struct{ err error }

func (e srcErr) Error() string { return e.err.Error() }
func (e srcErr) Unwrap() error { return e.err }

type srcReader struct{ r io.Reader }

func (s srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = srcErr{err}
	}
	return n, err
}

// codedLeakReader is a compressed request body on its way to the upstream,
// held back until its decoded bytes are scanned (see codingSlack).
type codedLeakReader struct {
	src     io.ReadCloser
	raw     *feed
	layers  []*layer
	lr      *leakReader // the scan of the decoded bytes
	scanned int64       // decoded bytes the scan released
	sent    int64       // body bytes handed to the upstream
	safe    int64       // body bytes that may be handed out
	done    bool        // everything decoded and scanned: the rest is safe
	pass    bool        // unreadable under warn: the rest passes unscanned
	err     error
	buf     []byte
	codings string // as the request named them, for the refusal
}

// newCodedLeakReader scans src decoded; holdLimit caps the compressed bytes
// held back (0: none, for a body already in memory).
func newCodedLeakReader(src io.ReadCloser, codings []string, m *matcher, block bool, holdLimit int) *codedLeakReader {
	c := &codedLeakReader{src: src, raw: &feed{src: srcReader{src}, keep: true, limit: holdLimit}, codings: strings.Join(codings, ", ")}
	in := c.raw
	capFn := func() int64 { return maxDecodedBase + maxDecodedRatio*(c.raw.base+int64(len(c.raw.buf))) }
	var top io.Reader
	// The last coding listed was applied last, so it is undone first.
	for i := len(codings) - 1; i >= 0; i-- {
		l := &layer{in: in, open: requestDecoders[codings[i]], marks: []mark{{}}, cap: capFn}
		c.layers = append(c.layers, l)
		top = l
		in = &feed{src: l}
	}
	c.lr = newLeakReader(io.NopCloser(top), m, block)
	return c
}

// Read hands out body bytes as they become safe, decoding and scanning
// further when none are.
func (c *codedLeakReader) Read(p []byte) (int, error) {
	for c.sent >= c.safe {
		switch {
		case c.err != nil:
			return 0, c.err
		case c.done:
			return 0, io.EOF
		case c.pass:
			n, err := c.src.Read(p)
			c.sent += int64(n)
			c.safe = c.sent
			return n, err
		}
		c.advance()
	}
	off := int(c.sent - c.raw.base)
	n := copy(p, c.raw.buf[off:off+int(min(int64(len(p)), c.safe-c.sent))])
	c.sent += int64(n)
	c.raw.release(c.sent)
	return n, nil
}

// advance scans one more read of decoded bytes and moves safe on.
func (c *codedLeakReader) advance() {
	if c.buf == nil {
		c.buf = make([]byte, scanChunk)
	}
	n, err := c.lr.Read(c.buf)
	c.scanned += int64(n)
	var se srcErr
	switch {
	case err == nil:
		safe := c.scanned
		for i := len(c.layers) - 1; i >= 0; i-- {
			safe = c.layers[i].safeIn(safe)
		}
		c.setSafe(safe)
	case err == io.EOF:
		c.finishDecoding()
	case errors.Is(err, errLeak):
		c.err = err
	case errors.As(err, &se):
		c.err = se.err // the client's body failed
	default:
		c.unreadable("corrupt, more than the guard decodes, or held back too long")
	}
}

func (c *codedLeakReader) setSafe(safe int64) {
	if safe > c.safe {
		c.safe = safe
	}
}

// finishDecoding: the innermost layer ended. Every layer must have ended
// exactly at the end of its input, or the bytes after a coded stream would
// reach the upstream unread.
func (c *codedLeakReader) finishDecoding() {
	for i := len(c.layers) - 1; i >= 0; i-- {
		var one [1]byte
		n, err := c.layers[i].in.Read(one[:])
		var se srcErr
		switch {
		case n == 0 && err == io.EOF:
			continue
		case errors.As(err, &se):
			c.err = se.err
		default:
			c.unreadable("data after the end of its coded stream")
		}
		return
	}
	c.done = true
	c.setSafe(c.raw.base + int64(len(c.raw.buf)))
}

// unreadable: the body cannot be scanned to its end. Blocking, it stops
// here; warning, it notes why and passes the rest unscanned.
func (c *codedLeakReader) unreadable(why string) {
	c.lr.unreadable = fmt.Sprintf("request body in content coding %q that the leak guard cannot read (%s)", c.codings, why)
	if c.lr.block {
		c.err = errUnreadable
		return
	}
	c.pass = true
	c.setSafe(c.raw.base + int64(len(c.raw.buf)))
	if c.raw.err == io.EOF {
		c.done = true // the source has ended: nothing more to pass
	}
}

func (c *codedLeakReader) Close() error { return c.src.Close() }

// scanCodedBody reads a whole compressed body (buf) through the decoders and
// the scan: the credential found, or why it could not be read.
func scanCodedBody(buf []byte, codings []string, m *matcher) (*credential, string) {
	c := newCodedLeakReader(io.NopCloser(bytes.NewReader(buf)), codings, m, true, 0)
	_, err := io.Copy(io.Discard, c)
	switch {
	case c.lr.hit != nil:
		return c.lr.hit, ""
	case c.lr.unreadable != "":
		return nil, c.lr.unreadable
	case err != nil:
		return nil, err.Error()
	}
	return nil, ""
}
