// Command awsclient is the AWS SDK program the e2e suite runs as agentvault's
// child. Like any agent built on aws-sdk-go-v2, it takes everything from the
// SDK's default chain: the (dummy) keys from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, the region from AWS_REGION, the roots from
// AWS_CA_BUNDLE, and the proxy from HTTPS_PROXY (the SDK's BuildableClient
// uses http.ProxyFromEnvironment).
//
//	awsclient sts OUT                  -> OUT.json {key_id, account, arn}
//	awsclient secret ID OUT            -> OUT.json {key_id, secret_string}
//	awsclient put URL SIZE MODE OUT    -> OUT.json {key_id, status, bytes, sha256, response}
//
// put sends SIZE random bytes to an S3 URL as an aws-chunked upload signed
// chunk by chunk (MODE "signed": STREAMING-AWS4-HMAC-SHA256-PAYLOAD;
// "signed-trailer": the -TRAILER variant with a signed CRC32 trailer), the
// way the S3 SDKs stream a body whose hash they cannot know in advance.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

const chunkSize = 64 << 10

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: awsclient sts|secret|put ..."))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fail(err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		fail(err)
	}
	out := map[string]any{"key_id": creds.AccessKeyID, "credential_source": creds.Source}
	args := os.Args[2:]
	var prefix string
	switch os.Args[1] {
	case "sts":
		need(args, 1)
		prefix = args[0]
		c := sts.NewFromConfig(cfg, func(o *sts.Options) { o.RetryMaxAttempts = 1 })
		id, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			fail(err)
		}
		out["account"], out["arn"] = aws.ToString(id.Account), aws.ToString(id.Arn)
	case "secret":
		need(args, 2)
		prefix = args[1]
		c := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 })
		v, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(args[0])})
		if err != nil {
			fail(err)
		}
		out["secret_string"] = aws.ToString(v.SecretString)
	case "put":
		need(args, 4)
		prefix = args[3]
		size, err := strconv.Atoi(args[1])
		if err != nil || size < 0 || size > 64<<20 {
			fail(fmt.Errorf("bad size %q", args[1]))
		}
		if err := put(ctx, cfg, creds, args[0], size, args[2], out); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
	b, _ := json.Marshal(out)
	if err := os.WriteFile(prefix+".json", b, 0o644); err != nil {
		fail(err)
	}
}

func need(args []string, n int) {
	if len(args) != n {
		fail(fmt.Errorf("want %d arguments, got %d", n, len(args)))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "awsclient:", err)
	os.Exit(1)
}

func put(ctx context.Context, cfg aws.Config, creds aws.Credentials, url string, size int, mode string, out map[string]any) error {
	if mode != "signed" && mode != "signed-trailer" {
		return fmt.Errorf("unknown put mode %q", mode)
	}
	trailer := mode == "signed-trailer"
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	out["bytes"], out["sha256"] = size, hex.EncodeToString(sum[:])

	hash := "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	if trailer {
		hash += "-TRAILER"
	}
	// The length must be signed before any chunk signature exists; they all
	// have 64 hex digits, so a dry run with zeros gives it.
	var n countWriter
	zeros := func([]byte) string { return strings.Repeat("0", 64) }
	if err := encode(&n, data, trailer, zeros, zeros); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, pr)
	if err != nil {
		return err
	}
	req.ContentLength = int64(n)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(size))
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if trailer {
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	}
	now := time.Now().UTC()
	err = v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", cfg.Region, now,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err != nil {
		return err
	}
	auth := req.Header.Get("Authorization")
	seed, err := hex.DecodeString(auth[len(auth)-64:])
	if err != nil {
		return errors.New("no signature in the Authorization header")
	}
	ss := v4.NewStreamSigner(creds, "s3", cfg.Region, seed)
	prev := seed
	chunkSig := func(b []byte) string {
		s, err := ss.GetSignature(ctx, nil, b, now)
		if err != nil {
			panic(err)
		}
		prev = s
		return hex.EncodeToString(s)
	}
	trailerSig := func(canonical []byte) string {
		mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
		day := now.Format("20060102")
		key := mac(mac(mac(mac([]byte("AWS4"+creds.SecretAccessKey), day), cfg.Region), "s3"), "aws4_request")
		h := sha256.Sum256(canonical)
		return hex.EncodeToString(mac(key, strings.Join([]string{"AWS4-HMAC-SHA256-TRAILER", now.Format("20060102T150405Z"),
			day + "/" + cfg.Region + "/s3/aws4_request", hex.EncodeToString(prev), hex.EncodeToString(h[:])}, "\n")))
	}
	go func() { pw.CloseWithError(encode(pw, data, trailer, chunkSig, trailerSig)) }()

	res, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	out["status"], out["response"] = res.StatusCode, string(body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("upload answered %d: %.300s", res.StatusCode, body)
	}
	return nil
}

// encode writes data as aws-chunked: "SIZE;chunk-signature=SIG\r\nDATA\r\n"
// per chunk, a final empty chunk, then (trailer) the CRC32 trailer and its
// signature.
func encode(w io.Writer, data []byte, trailer bool, chunkSig, trailerSig func([]byte) string) error {
	emit := func(b []byte) error {
		if _, err := fmt.Fprintf(w, "%x;chunk-signature=%s\r\n", len(b), chunkSig(b)); err != nil {
			return err
		}
		if len(b) == 0 {
			return nil
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		_, err := io.WriteString(w, "\r\n")
		return err
	}
	for i := 0; i < len(data); i += chunkSize {
		if err := emit(data[i:min(i+chunkSize, len(data))]); err != nil {
			return err
		}
	}
	if err := emit(nil); err != nil {
		return err
	}
	if trailer {
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], crc32.ChecksumIEEE(data))
		line := "x-amz-checksum-crc32:" + base64.StdEncoding.EncodeToString(c[:])
		if _, err := io.WriteString(w, line+"\r\nx-amz-trailer-signature:"+trailerSig([]byte(line+"\n"))+"\r\n"); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "\r\n")
	return err
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
