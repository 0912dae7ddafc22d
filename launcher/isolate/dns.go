package isolate

import "encoding/binary"

// DNS inside a transparent sandbox: every name is answered with 127.0.0.1,
// where the proxy listens on ports 443 and 80, so a client that ignores the
// proxy variables still reaches it. AAAA and every other type get an empty
// answer: the proxy's sandbox listeners are IPv4, and a client offered ::1
// would first try a port nothing listens on.

const (
	dnsHeaderLen = 12
	dnsTypeA     = 1
	dnsClassIN   = 1
	// dnsTTL is short: the answer never changes, but a cache outside the
	// sandbox must not keep it for long should it ever see one.
	dnsTTL = 5
)

// answerLoopback returns the reply to the DNS query q, or nil when q is not
// a standard query with exactly one question (then nothing is sent back).
// It reads only within q and never answers with more than q plus one record.
func answerLoopback(q []byte) []byte {
	if len(q) < dnsHeaderLen {
		return nil
	}
	flags := binary.BigEndian.Uint16(q[2:4])
	const qr, opcodeMask, rd = 1 << 15, 0xf << 11, 1 << 8
	if flags&qr != 0 || flags&opcodeMask != 0 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	// The question's name: uncompressed labels ending in the root, at most
	// 255 bytes (RFC 1035 2.3.4).
	end := dnsHeaderLen
	for {
		if end >= len(q) || end-dnsHeaderLen > 255 {
			return nil
		}
		l := int(q[end])
		if l == 0 {
			end++
			break
		}
		if l&0xc0 != 0 {
			return nil
		}
		end += 1 + l
	}
	if end+4 > len(q) || end-dnsHeaderLen > 255 {
		return nil
	}
	qtype, qclass := binary.BigEndian.Uint16(q[end:]), binary.BigEndian.Uint16(q[end+2:])
	end += 4

	ans := uint16(0)
	if qtype == dnsTypeA && qclass == dnsClassIN {
		ans = 1
	}
	out := make([]byte, 0, end+16)
	out = append(out, q[0], q[1])                                    // id
	out = binary.BigEndian.AppendUint16(out, qr|1<<10|flags&rd|1<<7) // response, authoritative, RD copied, RA
	out = binary.BigEndian.AppendUint16(out, 1)                      // one question
	out = binary.BigEndian.AppendUint16(out, ans)
	out = append(out, 0, 0, 0, 0) // no authority, no additional records
	out = append(out, q[dnsHeaderLen:end]...)
	if ans == 1 {
		out = append(out, 0xc0, dnsHeaderLen) // the question's name
		out = binary.BigEndian.AppendUint16(out, dnsTypeA)
		out = binary.BigEndian.AppendUint16(out, dnsClassIN)
		out = binary.BigEndian.AppendUint32(out, dnsTTL)
		out = binary.BigEndian.AppendUint16(out, 4)
		out = append(out, 127, 0, 0, 1)
	}
	return out
}
