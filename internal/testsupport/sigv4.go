package testsupport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The X-Amz-Content-Sha256 values of streamed and unsigned payloads.
const (
	streamSigned      = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamSignedTrail = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamUnsignTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	unsignedPayload   = "UNSIGNED-PAYLOAD"
	amzDate           = "20060102T150405Z"
	// maxSkew is how far X-Amz-Date may be from now, as AWS allows.
	maxSkew = 15 * time.Minute
)

var (
	authCredRE   = regexp.MustCompile(`Credential=([^,]+)`)
	authSignedRE = regexp.MustCompile(`SignedHeaders=([^,]+)`)
)

// SigV4Result is what VerifySigV4 made of one request, filled as far as the
// check got.
type SigV4Result struct {
	Service, Region string
	Chunks          int    // aws-chunked chunks whose signature was checked
	Payload         []byte // what the signature covers, aws-chunked decoded
}

// VerifySigV4 stands in for AWS: it checks r's SigV4 signature (the
// Authorization header, or a presigned URL) against the real creds by signing
// the received request again with the SDK's signer, chunk and trailer
// signatures and checksum trailers included. body is r's body as received.
// Its errors name no key, so a test may show them to the client.
func VerifySigV4(r *http.Request, body []byte, creds aws.Credentials) (SigV4Result, error) {
	var res SigV4Result
	if r.URL.Query().Get("X-Amz-Signature") != "" {
		res.Payload = body
		return res, verifyPresigned(r, creds, &res)
	}
	auth := r.Header.Get("Authorization")
	cm, sm := authCredRE.FindStringSubmatch(auth), authSignedRE.FindStringSubmatch(auth)
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || cm == nil || sm == nil {
		return res, errors.New("no SigV4 Authorization header")
	}
	cred := strings.Split(cm[1], "/")
	if len(cred) != 5 || cred[4] != "aws4_request" {
		return res, errors.New("bad credential scope")
	}
	if cred[0] != creds.AccessKeyID {
		return res, errors.New("signed with an access key id that is not the real one")
	}
	res.Region, res.Service = cred[2], cred[3]
	signed := strings.Split(sm[1], ";")
	has := func(n string) bool {
		for _, s := range signed {
			if s == n {
				return true
			}
		}
		return false
	}
	tok := r.Header.Values("X-Amz-Security-Token")
	switch {
	case creds.SessionToken == "" && len(tok) > 0:
		return res, errors.New("a session token was sent with keys that have none")
	case creds.SessionToken != "" && (len(tok) != 1 || tok[0] != creds.SessionToken || !has("x-amz-security-token")):
		return res, errors.New("the real session token is missing or unsigned")
	}
	t, err := time.Parse(amzDate, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return res, errors.New("bad X-Amz-Date")
	}
	if d := time.Since(t); d > maxSkew || d < -maxSkew {
		return res, errors.New("X-Amz-Date is more than 15 minutes off")
	}
	if !has("host") {
		return res, errors.New("host is not signed")
	}

	vreq := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host:   r.Host,
		Header: http.Header{},
	}
	if has("content-length") {
		vreq.ContentLength = r.ContentLength
	}
	for _, n := range signed {
		if n == "host" || n == "content-length" {
			continue
		}
		vs := r.Header.Values(n)
		if len(vs) == 0 {
			return res, fmt.Errorf("signed header %s did not arrive", n)
		}
		vreq.Header[http.CanonicalHeaderKey(n)] = vs
	}
	hash := r.Header.Get("X-Amz-Content-Sha256")
	res.Payload = body
	switch hash {
	case "":
		hash = sha256Hex(body)
	case unsignedPayload:
	case streamUnsignTrail:
		if res.Payload, err = decodeChunked(body, nil, &res); err != nil {
			return res, err
		}
	case streamSigned, streamSignedTrail:
		// Chunks chain from the seed, the signature checked just below.
	default:
		if hash != sha256Hex(body) {
			return res, errors.New("X-Amz-Content-Sha256 does not match the body")
		}
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, vreq, hash, res.Service, res.Region, t,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = res.Service == "s3" }); err != nil {
		return res, err
	}
	if want := vreq.Header.Get("Authorization"); want != auth {
		return res, fmt.Errorf("signature mismatch (got ...%s, want ...%s)", auth[len(auth)-12:], want[len(want)-12:])
	}
	if hash == streamSigned || hash == streamSignedTrail {
		seed, _ := hex.DecodeString(auth[len(auth)-64:])
		cv := &chunkVerifier{stream: v4.NewStreamSigner(creds, res.Service, res.Region, seed),
			t: t, creds: creds, region: res.Region, service: res.Service, prev: seed}
		res.Payload, err = decodeChunked(body, cv, &res)
		return res, err
	}
	return res, nil
}

// presignParams are the query parameters a presigned URL's signature adds.
var presignParams = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}

func verifyPresigned(r *http.Request, creds aws.Credentials, res *SigV4Result) error {
	q := r.URL.Query()
	cred := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(cred) != 5 || cred[0] != creds.AccessKeyID {
		return errors.New("presigned with a credential that is not the real key")
	}
	res.Region, res.Service = cred[2], cred[3]
	if q.Get("X-Amz-Security-Token") != creds.SessionToken {
		return errors.New("presigned URL has the wrong session token")
	}
	t, err := time.Parse(amzDate, q.Get("X-Amz-Date"))
	if err != nil {
		return errors.New("bad X-Amz-Date")
	}
	got := q.Get("X-Amz-Signature")
	for _, p := range presignParams {
		q.Del(p)
	}
	vreq := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()},
		Host:   r.Host,
		Header: http.Header{},
	}
	for _, n := range strings.Split(r.URL.Query().Get("X-Amz-SignedHeaders"), ";") {
		if n != "host" {
			vreq.Header[http.CanonicalHeaderKey(n)] = r.Header.Values(n)
		}
	}
	hash := sha256Hex(nil)
	if res.Service == "s3" {
		hash = unsignedPayload
	}
	signedURL, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, vreq, hash, res.Service, res.Region, t,
		func(o *v4.SignerOptions) {
			o.DisableHeaderHoisting, o.DisableURIPathEscaping = true, res.Service == "s3"
		})
	if err != nil {
		return err
	}
	su, err := url.Parse(signedURL)
	if err != nil {
		return err
	}
	if su.Query().Get("X-Amz-Signature") != got {
		return errors.New("presigned signature mismatch")
	}
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
