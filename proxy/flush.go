package proxy

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
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

// flushingBody flushes w before every read of the body, so what martian
// wrote of the previous read leaves before the proxy waits for more. It
// must only be written through a writer without ReadFrom (martian's chunked
// writer): bufio.Writer.ReadFrom reads into the buffer's free space, and a
// flush in the middle of that would corrupt the stream. It has no WriteTo
// for the same reason.
type flushingBody struct {
	body io.ReadCloser
	w    *bufio.Writer
}

func (f *flushingBody) Read(p []byte) (int, error) {
	if f.w.Buffered() > 0 {
		if err := f.w.Flush(); err != nil {
			return 0, err
		}
	}
	return f.body.Read(p)
}

func (f *flushingBody) Close() error { return f.body.Close() }

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
