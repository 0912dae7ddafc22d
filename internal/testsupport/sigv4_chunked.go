package testsupport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// maxChunk bounds one aws-chunked chunk, so a broken size line cannot make
// the verifier allocate without limit.
const maxChunk = 16 << 20

// chunkVerifier checks aws-chunked signatures: chunks with the SDK's stream
// signer, the trailer by hand (the SDK has no trailer signer).
type chunkVerifier struct {
	stream          *v4.StreamSigner
	t               time.Time
	creds           aws.Credentials
	region, service string
	prev            []byte
}

func (cv *chunkVerifier) chunk(data []byte, sig string) error {
	want, err := cv.stream.GetSignature(context.Background(), nil, data, cv.t)
	if err != nil {
		return err
	}
	cv.prev = want
	if hex.EncodeToString(want) != sig {
		return fmt.Errorf("chunk signature mismatch for a %d-byte chunk", len(data))
	}
	return nil
}

func (cv *chunkVerifier) trailer(canonical, sig string) error {
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	day := cv.t.UTC().Format("20060102")
	key := mac(mac(mac(mac([]byte("AWS4"+cv.creds.SecretAccessKey), day), cv.region), cv.service), "aws4_request")
	sts := strings.Join([]string{"AWS4-HMAC-SHA256-TRAILER", cv.t.UTC().Format(amzDate),
		day + "/" + cv.region + "/" + cv.service + "/aws4_request", hex.EncodeToString(cv.prev), sha256Hex([]byte(canonical))}, "\n")
	if hex.EncodeToString(mac(key, sts)) != sig {
		return errors.New("trailer signature mismatch")
	}
	return nil
}

// decodeChunked decodes an aws-chunked body, checking chunk and trailer
// signatures when cv is set (counting them in res) and every checksum
// trailer.
func decodeChunked(body []byte, cv *chunkVerifier, res *SigV4Result) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(body))
	readLine := func() (string, error) {
		l, err := br.ReadString('\n')
		if err != nil || !strings.HasSuffix(l, "\r\n") {
			return "", fmt.Errorf("bad aws-chunked line %.80q", l)
		}
		return strings.TrimSuffix(l, "\r\n"), nil
	}
	var payload []byte
	for {
		l, err := readLine()
		if err != nil {
			return nil, err
		}
		sizeTok, ext, _ := strings.Cut(l, ";")
		size, err := strconv.ParseInt(sizeTok, 16, 64)
		if err != nil || size < 0 || size > maxChunk {
			return nil, fmt.Errorf("bad chunk size in %.80q", l)
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, err
		}
		if cv != nil {
			sig, ok := strings.CutPrefix(ext, "chunk-signature=")
			if !ok {
				return nil, errors.New("chunk without signature")
			}
			if err := cv.chunk(data, sig); err != nil {
				return nil, err
			}
			res.Chunks++
		}
		payload = append(payload, data...)
		if size == 0 {
			break
		}
		if l, err := readLine(); err != nil || l != "" {
			return nil, errors.New("chunk data not followed by CRLF")
		}
	}
	var canonical string
	for {
		l, err := readLine()
		if err != nil {
			return nil, err
		}
		if l == "" {
			break
		}
		name, value, _ := strings.Cut(l, ":")
		if name == "x-amz-trailer-signature" {
			if cv == nil {
				return nil, errors.New("trailer signature in an unsigned stream")
			}
			if err := cv.trailer(canonical, value); err != nil {
				return nil, err
			}
			continue
		}
		canonical += name + ":" + value + "\n"
		if err := checkChecksum(name, value, payload); err != nil {
			return nil, err
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		return nil, fmt.Errorf("%d bytes after the end of the aws-chunked body", len(rest))
	}
	return payload, nil
}

// checkChecksum verifies a flexible-checksum trailer; one it cannot compute
// is an error, so that a new client default shows up in the tests.
func checkChecksum(name, value string, payload []byte) error {
	var sum []byte
	switch name {
	case "x-amz-checksum-crc32", "x-amz-checksum-crc32c":
		tab := crc32.IEEETable
		if name == "x-amz-checksum-crc32c" {
			tab = crc32.MakeTable(crc32.Castagnoli)
		}
		sum = binary.BigEndian.AppendUint32(nil, crc32.Checksum(payload, tab))
	case "x-amz-checksum-sha256":
		s := sha256.Sum256(payload)
		sum = s[:]
	case "x-amz-checksum-sha1":
		s := sha1.Sum(payload)
		sum = s[:]
	default:
		return fmt.Errorf("trailer %s: the test verifier cannot check it", name)
	}
	if base64.StdEncoding.EncodeToString(sum) != value {
		return fmt.Errorf("trailer %s does not match the payload", name)
	}
	return nil
}

// CRC32Base64 is the x-amz-checksum-crc32 trailer value of b.
func CRC32Base64(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)))
}
