package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

// TestGzipReadersRecycled: a decoder handed back at the end of one body
// decodes the next one from its own start, whatever the previous body was
// (whole, cut short, or corrupt).
func TestGzipReadersRecycled(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	first := gz("first body, long enough to fill some of the window: " + string(bytes.Repeat([]byte("abc"), 5000)))
	corrupt := append([]byte(nil), first...)
	corrupt[len(corrupt)-5] ^= 0xff // the CRC
	for _, tc := range []struct {
		name   string
		before []byte
		read   int // bytes of the previous body read; -1: all
	}{
		{"after a whole body", first, -1},
		{"after a body cut short", first, 100},
		{"after a corrupt body", corrupt, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newGzipReader(bytes.NewReader(tc.before))
			if err != nil {
				t.Fatal(err)
			}
			if tc.read < 0 {
				io.ReadAll(r)
			} else {
				io.ReadFull(r, make([]byte, tc.read))
			}
			r.Close()
			want := "second body, not the first"
			r2, err := newGzipReader(bytes.NewReader(gz(want)))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r2)
			if err != nil || string(got) != want {
				t.Fatalf("second body: %q, %v", got, err)
			}
		})
	}
}
