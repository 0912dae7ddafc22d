package isolate

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// query builds a DNS query for name and qtype with the given flags and
// question count.
func query(name string, qtype uint16, flags uint16, qdcount uint16) []byte {
	q := []byte{0xab, 0xcd}
	q = binary.BigEndian.AppendUint16(q, flags)
	q = binary.BigEndian.AppendUint16(q, qdcount)
	q = append(q, 0, 0, 0, 0, 0, 0)
	for _, l := range strings.Split(name, ".") {
		q = append(q, byte(len(l)))
		q = append(q, l...)
	}
	q = append(q, 0)
	q = binary.BigEndian.AppendUint16(q, qtype)
	return binary.BigEndian.AppendUint16(q, dnsClassIN)
}

// TestAnswerLoopback: an A query gets exactly 127.0.0.1, any other type an
// empty answer, and what is not one well-formed standard query (a response,
// a compression pointer in the question, a name past 255 bytes, a
// truncation) gets nothing.
func TestAnswerLoopback(t *testing.T) {
	a := query("api.example.test", dnsTypeA, 1<<8, 1)
	long := query(strings.Repeat(strings.Repeat("x", 60)+".", 5)+"test", dnsTypeA, 0, 1)
	compressed := append(query("x", dnsTypeA, 0, 1)[:dnsHeaderLen], 0xc0, 0x0c, 0, 1, 0, 1)
	tests := []struct {
		name    string
		q       []byte
		answers int // -1: no reply
	}{
		{"A", a, 1},
		{"AAAA", query("api.example.test", 28, 0, 1), 0},
		{"response", query("api.example.test", dnsTypeA, 1<<15, 1), -1},
		{"not a standard query", query("api.example.test", dnsTypeA, 2<<11, 1), -1},
		{"two questions", query("api.example.test", dnsTypeA, 0, 2), -1},
		{"compression pointer", compressed, -1},
		{"name too long", long, -1},
		{"truncated", a[:len(a)-3], -1},
		{"header only", a[:dnsHeaderLen], -1},
		{"short", a[:5], -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := answerLoopback(tc.q)
			if tc.answers < 0 {
				if out != nil {
					t.Fatalf("replied %x", out)
				}
				return
			}
			if len(out) < len(tc.q) || !bytes.Equal(out[:2], tc.q[:2]) || out[2]&0x80 == 0 {
				t.Fatalf("reply %x is not a response to %x", out, tc.q)
			}
			if n := int(binary.BigEndian.Uint16(out[6:8])); n != tc.answers {
				t.Fatalf("%d answers, want %d", n, tc.answers)
			}
			if !bytes.Equal(out[dnsHeaderLen:len(tc.q)], tc.q[dnsHeaderLen:]) {
				t.Errorf("question not echoed")
			}
			if tc.answers == 1 && !bytes.Equal(out[len(out)-4:], []byte{127, 0, 0, 1}) {
				t.Errorf("answer %x, want 127.0.0.1", out[len(out)-4:])
			}
		})
	}
}
