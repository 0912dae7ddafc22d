package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net/http/httputil"
	"testing"
	"testing/iotest"
)

// TestFlushingBodyFrames: the chunks WriteTo frames itself decode to the
// body exactly, whatever the sizes of the body's reads, and a writer that is
// not net/http's chunked writer gets the bare bytes.
func TestFlushingBodyFrames(t *testing.T) {
	big := make([]byte, 3*frameSize+17)
	rand.Read(big)
	for _, tc := range []struct {
		name string
		body []byte
		src  func(io.Reader) io.Reader
	}{
		{"empty", nil, nil},
		{"one byte", []byte("x"), nil},
		{"exactly one frame", big[:frameSize], nil},
		{"one frame and a byte", big[:frameSize+1], nil},
		{"large", big, nil},
		{"large, one byte per read", big[:5000], iotest.OneByteReader},
		{"large, half reads", big, iotest.HalfReader},
		{"data with the last read", big[:1000], iotest.DataErrReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunked := range []bool{true, false} {
				var src io.Reader = bytes.NewReader(tc.body)
				if tc.src != nil {
					src = tc.src(src)
				}
				var wire bytes.Buffer
				bw := bufio.NewWriter(&wire)
				f := &flushingBody{body: io.NopCloser(src), w: bw}
				var dst io.Writer = bw
				cw := httputil.NewChunkedWriter(bw)
				if chunked {
					dst = cw
					if !isChunkedWriter(cw) {
						t.Fatal("isChunkedWriter does not recognise net/http's chunked writer")
					}
				}
				n, err := io.Copy(dst, f)
				if err != nil || n != int64(len(tc.body)) {
					t.Fatalf("copied %d, %v; want %d", n, err, len(tc.body))
				}
				var got []byte
				if chunked {
					cw.Close()
					bw.WriteString("\r\n")
					bw.Flush()
					got, err = io.ReadAll(httputil.NewChunkedReader(&wire))
					if err != nil {
						t.Fatalf("chunked decoding: %v", err)
					}
				} else {
					bw.Flush()
					got = wire.Bytes()
				}
				if !bytes.Equal(got, tc.body) {
					t.Fatalf("chunked=%v: %d bytes out, want %d equal ones", chunked, len(got), len(tc.body))
				}
			}
		})
	}
}
