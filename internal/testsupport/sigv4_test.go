package testsupport

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// TestVerifySigV4: the verifier's check is not vacuous. A request signed with
// other keys, a tampered body or chunk, a stale date, a wrong checksum
// trailer and a presigned URL of other keys are refused.
func TestVerifySigV4(t *testing.T) {
	real := aws.Credentials{AccessKeyID: "ASIATESTSUPPORT00001", SecretAccessKey: "real/Secret+Key0123456789abcdefghijklmnop", SessionToken: "FwoGZXIvYXdzEReal//Session+Token=="}
	other := aws.Credentials{AccessKeyID: "ASIATESTSUPPORT00002", SecretAccessKey: "other/Secret+Key0123456789abcdefghijklmno", SessionToken: real.SessionToken}
	wrongSecret := real
	wrongSecret.SecretAccessKey = other.SecretAccessKey
	data := bytes.Repeat([]byte("0123456789abcdef"), 10<<10)
	now := time.Now().UTC()
	// sign builds a PUT whose wire body is body, signed with c for hash at at.
	sign := func(c aws.Credentials, body []byte, hash string, at time.Time, hdr map[string]string) *http.Request {
		req, _ := http.NewRequest(http.MethodPut, "https://s3.us-east-1.amazonaws.com/b/k", bytes.NewReader(body))
		req.Host = req.URL.Host
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		req.Header.Set("X-Amz-Content-Sha256", hash)
		if err := v4.NewSigner().SignHTTP(context.Background(), c, req, hash, "s3", "us-east-1", at,
			func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }); err != nil {
			t.Fatal(err)
		}
		return req
	}
	// frame encodes data as signed aws-chunked, chaining from seed.
	frame := func(c aws.Credentials, seed []byte, at time.Time) []byte {
		var b bytes.Buffer
		ss := v4.NewStreamSigner(c, "s3", "us-east-1", seed)
		for _, part := range [][]byte{data[:64<<10], data[64<<10:], nil} {
			s, _ := ss.GetSignature(context.Background(), nil, part, at)
			fmt.Fprintf(&b, "%x;chunk-signature=%x\r\n", len(part), s)
			if len(part) > 0 {
				b.Write(part)
				b.WriteString("\r\n")
			}
		}
		b.WriteString("\r\n")
		return b.Bytes()
	}
	chunked := func(c aws.Credentials) (*http.Request, []byte) {
		wireLen := len(frame(c, make([]byte, 32), now)) // signatures have a fixed length
		req := sign(c, make([]byte, wireLen), streamSigned, now, map[string]string{"Content-Encoding": "aws-chunked",
			"X-Amz-Decoded-Content-Length": strconv.Itoa(len(data))})
		auth := req.Header.Get("Authorization")
		seed, err := hex.DecodeString(auth[len(auth)-64:])
		if err != nil {
			t.Fatal(err)
		}
		return req, frame(c, seed, now)
	}
	unsignedTrail := func(sum string) []byte {
		return []byte(fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n", len(data), data, sum))
	}
	presigned := func(c aws.Credentials) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, "https://b.s3.us-east-1.amazonaws.com/k?X-Amz-Expires=300", nil)
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(), c, req, unsignedPayload, "s3", "us-east-1", now,
			func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err != nil {
			t.Fatal(err)
		}
		preq, _ := http.NewRequest(http.MethodGet, u, nil)
		preq.Host = preq.URL.Host
		return preq
	}
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[200] ^= 1; return b }
	trailHdr := map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32",
		"X-Amz-Decoded-Content-Length": strconv.Itoa(len(data))}

	body := []byte("hello")
	chunkedReal, chunkedRealBody := chunked(real)
	chunkedWrong, chunkedWrongBody := chunked(wrongSecret)
	for _, tc := range []struct {
		name       string
		req        *http.Request
		body       []byte
		wantErr    string // "" = verified
		wantChunks int
	}{
		{"real keys", sign(real, body, sha256Hex(body), now, nil), body, "", 0},
		{"other keys", sign(other, body, sha256Hex(body), now, nil), body, "not the real one", 0},
		{"real id, other secret", sign(wrongSecret, body, sha256Hex(body), now, nil), body, "signature mismatch", 0},
		{"body changed", sign(real, body, sha256Hex(body), now, nil), []byte("hellO"), "does not match the body", 0},
		{"an hour old", sign(real, body, sha256Hex(body), now.Add(-time.Hour), nil), body, "15 minutes", 0},
		{"chunked, real keys", chunkedReal, chunkedRealBody, "", 3},
		{"chunked, tampered chunk", chunkedReal, flip(chunkedRealBody), "chunk signature mismatch", 0},
		{"chunked, other secret", chunkedWrong, chunkedWrongBody, "signature mismatch", 0},
		{"unsigned trailer", sign(real, unsignedTrail(CRC32Base64(data)), streamUnsignTrail, now, trailHdr), unsignedTrail(CRC32Base64(data)), "", 0},
		{"unsigned trailer, wrong checksum", sign(real, unsignedTrail("AAAAAA=="), streamUnsignTrail, now, trailHdr), unsignedTrail("AAAAAA=="), "does not match the payload", 0},
		{"presigned, real keys", presigned(real), nil, "", 0},
		{"presigned, other secret", presigned(wrongSecret), nil, "presigned signature mismatch", 0},
	} {
		res, err := VerifySigV4(tc.req, tc.body, real)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr == "" && tc.req.Method == http.MethodPut && len(res.Payload) == 0:
			t.Errorf("%s: no payload", tc.name)
		case tc.wantErr == "" && res.Chunks != tc.wantChunks:
			t.Errorf("%s: %d chunks checked, want %d", tc.name, res.Chunks, tc.wantChunks)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
		case err != nil && (strings.Contains(err.Error(), real.SecretAccessKey) || strings.Contains(err.Error(), real.AccessKeyID)):
			t.Errorf("%s: the error names a key: %v", tc.name, err)
		}
	}
}
