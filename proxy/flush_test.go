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

// countingWriter counts the writes that reach the connection.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return c.Buffer.Write(p) }

// scriptedSource returns its pieces one read at a time, then io.EOF (with
// the last piece when eofWithLast); before each read after the first it
// checks that everything handed out so far has reached the connection.
type scriptedSource struct {
	pieces      []string
	eofWithLast bool
	conn        *countingWriter
	sent        int
	t           *testing.T
}

func (s *scriptedSource) Read(p []byte) (int, error) {
	if s.sent > 0 && !bytes.Contains(s.conn.Bytes(), []byte(s.pieces[s.sent-1])) {
		s.t.Errorf("piece %d still buffered while the body is read again: a paused stream would hold it", s.sent-1)
	}
	if s.sent == len(s.pieces) {
		return 0, io.EOF
	}
	n := copy(p, s.pieces[s.sent])
	s.sent++
	if s.eofWithLast && s.sent == len(s.pieces) {
		return n, io.EOF
	}
	return n, nil
}

func (s *scriptedSource) Close() error { return nil }

// TestFlushingBodyWrites: a piece of a stream leaves before the body is read
// again (an SSE event is never held while the upstream pauses), and the last
// piece of a response whose end came with it leaves with that end, in one
// write instead of two.
func TestFlushingBodyWrites(t *testing.T) {
	m := &matcher{needles: []needle{{b: []byte("zzzz-never-there"), s: "zzzz-never-there"}}}
	m.hold, m.maxLen = classify(m.needles)
	for _, tc := range []struct {
		name        string
		eofWithLast bool
		wantWrites  int // head; each piece; the end
	}{
		{"end arrives apart", false, 4},
		{"end arrives with the last piece", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := &countingWriter{}
			bw := bufio.NewWriter(conn)
			src := &scriptedSource{pieces: []string{"data: one\n\n", "data: two\n\n"}, eofWithLast: tc.eofWithLast, conn: conn, t: t}
			red := newRedactor(src, m, func() {})
			f := &flushingBody{body: &countingBody{rc: red}, w: bw}
			bw.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			cw := httputil.NewChunkedWriter(bw)
			if _, err := io.Copy(cw, f); err != nil {
				t.Fatal(err)
			}
			cw.Close()
			bw.WriteString("\r\n")
			bw.Flush()
			if conn.writes != tc.wantWrites {
				t.Fatalf("%d writes, want %d", conn.writes, tc.wantWrites)
			}
		})
	}
}
