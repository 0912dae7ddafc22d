package proxy

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"unsafe"

	"github.com/google/martian/v3"
)

// martian writes every response through the connection's 4 KiB
// bufio.Writer and flushes it only once the whole body is written, so a
// stream (SSE, a chunked download, a gzip body the reflection guard decodes)
// would reach the client late. Its only way to the writer is Session.Hijack,
// after which martian ends the connection: every such response used to cost
// the client a new TLS handshake.
//
// borrowWriter takes the writer and hands the connection straight back to
// martian, which then writes the response itself (chunked) and keeps
// serving the connection; flushingBody flushes before each read of the body,
// so every piece leaves as soon as it arrived. It relies on martian v3's
// Session keeping its hijack state in a bool field "hijacked" guarded by
// "mu" (martian v3.3.3 is the last release); if that ever changes it reports
// false and the caller falls back to hijacking for good.
func borrowWriter(sess *martian.Session) (*bufio.Writer, bool) {
	v := reflect.ValueOf(sess).Elem()
	hijacked, mu := v.FieldByName("hijacked"), v.FieldByName("mu")
	if !hijacked.IsValid() || hijacked.Kind() != reflect.Bool || !mu.IsValid() || mu.Type() != reflect.TypeOf(sync.RWMutex{}) {
		return nil, false
	}
	_, brw, err := sess.Hijack()
	if err != nil || brw == nil {
		return nil, false
	}
	lock := (*sync.RWMutex)(unsafe.Pointer(mu.UnsafeAddr()))
	lock.Lock()
	*(*bool)(unsafe.Pointer(hijacked.UnsafeAddr())) = false
	lock.Unlock()
	return brw.Writer, true
}

// flushingBody is a streamed response body that martian writes (chunked)
// through the connection's writer w: what martian wrote of the previous
// read is flushed before each read of the body, so every piece leaves as
// soon as it arrived and a stream that pauses (SSE) is never held back.
//
// martian copies it with io.Copy, which calls WriteTo: that writes each
// read of the body as one chunk in a single write, its size line and CRLF
// framed around the data in the same buffer (writeFrame), instead of
// martian's chunked writer's three writes, which cost a 4 KiB TLS record
// and a 2-byte one for every piece of a download.
//
// It never writes through a writer with ReadFrom: bufio.Writer.ReadFrom
// reads into the buffer's free space, and a flush in the middle of that
// would corrupt the stream.
type flushingBody struct {
	body io.ReadCloser
	w    *bufio.Writer
}

func (f *flushingBody) Read(p []byte) (int, error) {
	if f.w.Buffered() > 0 && !readyNow(f.body) {
		if err := f.w.Flush(); err != nil {
			return 0, err
		}
	}
	return f.body.Read(p)
}

// readyNow reports whether r's next Read is certain to return at once
// (what it holds is already released, or its end already seen): then what
// is buffered waits for that read instead of leaving in a write of its own,
// so the last piece of a response and its end leave together. Anything
// that cannot tell says no, and the writer is flushed as before.
func readyNow(r io.Reader) bool {
	rr, ok := r.(interface{ readyNow() bool })
	return ok && rr.readyNow()
}

func (f *flushingBody) Close() error { return f.body.Close() }

// frameSize is the most one read of the body asks for; the frame around it
// (chunk size line and CRLF) is written into the same buffer.
const (
	frameSize = 32 << 10
	frameGap  = 16 // room for "%x\r\n" before the data
)

var frameBufs = sync.Pool{New: func() any { b := make([]byte, frameGap+frameSize+2); return &b }}

func (f *flushingBody) WriteTo(w io.Writer) (int64, error) {
	framed := isChunkedWriter(w)
	bp := frameBufs.Get().(*[]byte)
	defer frameBufs.Put(bp)
	buf := *bp
	var written int64
	for {
		n, rerr := f.Read(buf[frameGap : frameGap+frameSize])
		if n > 0 {
			var err error
			if framed {
				err = writeFrame(f.w, buf, n)
			} else {
				_, err = w.Write(buf[frameGap : frameGap+n])
			}
			if err != nil {
				return written, err
			}
			written += int64(n)
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// writeFrame writes buf[frameGap:frameGap+n] as one HTTP/1.1 chunk, its size
// line and CRLF written around it in buf, in a single write.
func writeFrame(w *bufio.Writer, buf []byte, n int) error {
	var line [frameGap]byte
	size := strconv.AppendInt(line[:0], int64(n), 16)
	size = append(size, '\r', '\n')
	start := frameGap - len(size)
	copy(buf[start:], size)
	end := frameGap + n
	buf[end], buf[end+1] = '\r', '\n'
	_, err := w.Write(buf[start : end+2])
	return err
}

// isChunkedWriter reports whether w is net/http's chunked writer (which
// Response.Write puts around the body when it sends it chunked), whose
// framing writeFrame reproduces on the connection's writer directly.
func isChunkedWriter(w io.Writer) bool {
	return reflect.TypeOf(w).String() == "*internal.chunkedWriter"
}

// streamChunked makes martian write res chunked, flushing as the body
// arrives, while the client connection stays open for the next request.
// It reports false when the writer could not be borrowed.
func streamChunked(sess *martian.Session, res *http.Response) bool {
	w, ok := borrowWriter(sess)
	if !ok {
		return false
	}
	res.Header.Del("Content-Length")
	res.ContentLength = -1
	res.TransferEncoding = []string{"chunked"}
	res.Body = &flushingBody{body: res.Body, w: w}
	return true
}
