package proxy

// aws-sigv4 injection. The child holds well-formed dummy AWS keys and signs
// its requests with them as usual; for a request to the credential's hosts
// the proxy throws that signature away and signs the same request again with
// the real keys. The dummy signature is never checked: its only use is to
// tell which service and region the client meant (the credential scope) and
// which headers it chose to sign.
//
// Payloads:
//   - X-Amz-Content-Sha256 present: the client's value is kept and signed as
//     is (a hex hash, UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER);
//     the body streams through untouched.
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] (aws-chunked with chunk
//     signatures chained from the request's signature): the chunks are
//     re-signed as they stream, one chunk in memory at a time. Chunk
//     signatures have a fixed length, so Content-Length does not change.
//   - no X-Amz-Content-Sha256: most services require the payload hash in the
//     signature, so a body up to maxHashedBody is read and hashed. A larger
//     body is sent as UNSIGNED-PAYLOAD to S3, which accepts that, and refused
//     for every other service rather than buffered without bound.
//   - event streams (STREAMING-AWS4-HMAC-SHA256-EVENTS) and SigV4a
//     (AWS4-ECDSA-P256-SHA256) are refused with a clear error.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigv4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	emptySHA256    = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	unsignedPayload        = "UNSIGNED-PAYLOAD"
	streamingUnsignedTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrail   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"

	// maxHashedBody is the largest body read into memory to compute a
	// payload hash the client did not send (the same bound as replays).
	maxHashedBody = 1 << 20
	// maxChunk bounds one aws-chunked chunk held while it is re-signed; SDKs
	// use 64 KiB to 1 MiB.
	maxChunk = 16 << 20
	// maxChunkLine bounds a chunk header or trailer line.
	maxChunkLine = 4096
)

// errAWSUnsigned means the request carries no AWS signature at all (an
// anonymous S3 read, a non-AWS call to an AWS host): there is nothing to
// replace, and the caller may send it as it is.
var errAWSUnsigned = errors.New("aws-sigv4: the request carries no AWS signature to replace")

// s3Services sign the URI path as is (no second escaping) and accept
// UNSIGNED-PAYLOAD.
var s3Services = map[string]bool{"s3": true, "s3-object-lambda": true, "s3-outposts": true, "s3express": true}

// DummyAWSCredentials returns random keys shaped like real ones (an AKIA key
// id of 20 characters, a 40-character secret), so that SDKs and the aws CLI
// accept them and sign with them.
func DummyAWSCredentials() (accessKeyID, secretKey string) {
	id := make([]byte, 10)  // 10 bytes = 16 base32 characters
	sec := make([]byte, 30) // 30 bytes = 40 base64 characters
	rand.Read(id)
	rand.Read(sec)
	return "AKIA" + base32.StdEncoding.EncodeToString(id), base64.StdEncoding.EncodeToString(sec)
}

// credentialKeys maps the names under which the usual sources (Secrets
// Manager JSON, Vault aws/creds, STS, credential_process) put each part,
// compared without case, '_' or '-'.
var credentialKeys = map[string]string{
	"accesskeyid": "id", "accesskey": "id", "awsaccesskeyid": "id",
	"secretaccesskey": "secret", "secretkey": "secret", "awssecretaccesskey": "secret",
	"sessiontoken": "token", "securitytoken": "token", "awssessiontoken": "token",
}

// parseAWSCredentials reads the real keys from an aws-sigv4 secret. Errors
// name the fields, never a value.
func parseAWSCredentials(secret string) (aws.Credentials, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(secret), &obj); err != nil || obj == nil {
		return aws.Credentials{}, errors.New("aws-sigv4: the secret is not a JSON object with access_key_id and secret_access_key")
	}
	got := map[string]string{}
	for k, raw := range obj {
		norm := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(k))
		part, ok := credentialKeys[norm]
		if !ok {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			if string(bytes.TrimSpace(raw)) == "null" && part == "token" {
				continue
			}
			return aws.Credentials{}, fmt.Errorf("aws-sigv4: field %q of the secret is not a string", k)
		}
		if prev, dup := got[part]; dup && prev != v {
			return aws.Credentials{}, fmt.Errorf("aws-sigv4: the secret has two different values for its %s", partName(part))
		}
		got[part] = v
	}
	c := aws.Credentials{AccessKeyID: got["id"], SecretAccessKey: got["secret"], SessionToken: got["token"]}
	switch {
	case c.AccessKeyID == "":
		return c, errors.New("aws-sigv4: the secret has no access key id (access_key_id, AccessKeyId or access_key)")
	case c.SecretAccessKey == "":
		return c, errors.New("aws-sigv4: the secret has no secret key (secret_access_key, SecretAccessKey or secret_key)")
	}
	for part, v := range got {
		// Keys and tokens are base64-like. A control character would split
		// the request; in the key id, ',' '/' '=' would break the header.
		bad := "\x7f"
		if part == "id" {
			bad += ",/="
		}
		if strings.ContainsAny(v, bad) || strings.IndexFunc(v, func(r rune) bool { return r <= ' ' }) >= 0 {
			return c, fmt.Errorf("aws-sigv4: the secret's %s contains a character that cannot be sent", partName(part))
		}
	}
	return c, nil
}

func partName(part string) string {
	return map[string]string{"id": "access key id", "secret": "secret key", "token": "session token"}[part]
}

// scope is what the client's signature says it was for.
type scope struct {
	date, region, service string
	signed                []string // lower-case header names the client signed
}

var (
	signedHeadersRE = regexp.MustCompile(`SignedHeaders=([^,\s]*)`)
	signatureRE     = regexp.MustCompile(`Signature=([0-9a-f]{64})`)
)

// parseScope reads ".../DATE/REGION/SERVICE/aws4_request" from a credential.
// It works from the end: the access key id in front is not needed, and by
// the time this runs the placeholder substitution may have changed it.
func parseScope(cred string) (scope, bool) {
	i := strings.LastIndex(cred, "/aws4_request")
	if i < 0 {
		return scope{}, false
	}
	parts := strings.Split(cred[:i], "/")
	if len(parts) < 4 {
		return scope{}, false
	}
	s := scope{date: parts[len(parts)-3], region: parts[len(parts)-2], service: parts[len(parts)-1]}
	if len(s.date) != 8 || s.region == "" || s.service == "" {
		return scope{}, false
	}
	if _, err := time.Parse("20060102", s.date); err != nil {
		return scope{}, false
	}
	return s, true
}

// resignAWS replaces the request's SigV4 signature (header or presigned
// query) by one made with the real credentials in secret, for the CONNECT
// target host:port. It returns errAWSUnsigned for a request with no AWS
// signature, and otherwise an error that names the problem but no secret;
// on error the request must not be sent.
func resignAWS(req *http.Request, secret string, host string, port int) error {
	creds, err := parseAWSCredentials(secret)
	if err != nil {
		return err
	}
	req.Host = host
	if port != 443 {
		req.Host = joinHostPort(host, port)
	}
	auth := req.Header.Get("Authorization")
	q := req.URL.Query()
	switch {
	case strings.HasPrefix(auth, sigv4Algorithm+" "):
		return resignHeader(req, creds, auth)
	case strings.HasPrefix(auth, "AWS4-ECDSA-P256-SHA256"):
		return errors.New("aws-sigv4: SigV4a (multi-region) signatures cannot be re-signed; use a regional endpoint")
	case strings.HasPrefix(auth, "AWS "):
		return errors.New("aws-sigv4: signature version 2 cannot be re-signed; configure the client for SigV4")
	case auth != "":
		return errAWSUnsigned
	case q.Get("X-Amz-Algorithm") == sigv4Algorithm && q.Get("X-Amz-Credential") != "":
		return resignQuery(req, creds, q)
	case q.Get("X-Amz-Algorithm") != "":
		return fmt.Errorf("aws-sigv4: presigned URL with algorithm %q cannot be re-signed", q.Get("X-Amz-Algorithm"))
	}
	return errAWSUnsigned
}

// signingTime is the client's own X-Amz-Date, so that a request keeps the
// validity window its client gave it; now when it has none.
func signingTime(v string) time.Time {
	if t, err := time.Parse(amzDateFormat, v); err == nil {
		return t
	}
	return time.Now().UTC()
}

func resignHeader(req *http.Request, creds aws.Credentials, auth string) error {
	_, rest, _ := strings.Cut(auth, " ")
	var cred string
	for _, f := range strings.Split(rest, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(f), "Credential="); ok {
			cred = v
		}
	}
	sc, ok := parseScope(cred)
	if !ok {
		return errors.New("aws-sigv4: the Authorization header has no valid credential scope (DATE/REGION/SERVICE/aws4_request)")
	}
	if m := signedHeadersRE.FindStringSubmatch(auth); m != nil && m[1] != "" {
		sc.signed = strings.Split(strings.ToLower(m[1]), ";")
	}
	t := signingTime(req.Header.Get("X-Amz-Date"))

	hash, streaming, err := payloadHash(req, sc.service)
	if err != nil {
		return err
	}
	req.Header.Del("Authorization")
	req.Header.Del("X-Amz-Security-Token")
	sreq := signingCopy(req, sc.signed)
	if h := req.Header.Values("X-Amz-Content-Sha256"); len(h) > 0 {
		sreq.Header["X-Amz-Content-Sha256"] = h
	}
	err = v4.NewSigner().SignHTTP(context.Background(), creds, sreq, hash, sc.service, sc.region, t,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = s3Services[sc.service] })
	if err != nil {
		return fmt.Errorf("aws-sigv4: signing failed: %v", err)
	}
	for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if v, ok := sreq.Header[k]; ok {
			req.Header[k] = v
		}
	}
	// The signer canonicalized the query; sending that form is sending
	// exactly what was signed.
	req.URL.RawQuery = sreq.URL.RawQuery
	if streaming != "" {
		m := signatureRE.FindStringSubmatch(sreq.Header.Get("Authorization"))
		if m == nil {
			return errors.New("aws-sigv4: signing produced no signature")
		}
		req.Body = newChunkResigner(req.Body, creds, sc, t, m[1], streaming == streamingSignedTrail)
	}
	return nil
}

// payloadHash decides the hash that goes into the signature, reading the
// body only when the client left it to the signer. streaming is the
// X-Amz-Content-Sha256 value when the body's chunks must be re-signed.
func payloadHash(req *http.Request, service string) (hash, streaming string, err error) {
	h := req.Header.Get("X-Amz-Content-Sha256")
	switch {
	case h == unsignedPayload || h == streamingUnsignedTrail:
		return h, "", nil
	case h == streamingSigned || h == streamingSignedTrail:
		return h, h, nil
	case strings.HasPrefix(h, "STREAMING-"):
		return "", "", fmt.Errorf("aws-sigv4: payload signing mode %s (event streams, SigV4a) cannot be re-signed", h)
	case h != "":
		if len(h) != 64 {
			return "", "", errors.New("aws-sigv4: X-Amz-Content-Sha256 is neither a SHA-256 hex digest nor a known payload mode")
		}
		if _, err := hex.DecodeString(h); err != nil {
			return "", "", errors.New("aws-sigv4: X-Amz-Content-Sha256 is neither a SHA-256 hex digest nor a known payload mode")
		}
		return h, "", nil // as sent: the header and the canonical request must agree
	}
	if req.Body == nil || req.Body == http.NoBody {
		return emptySHA256, "", nil
	}
	buf, err := io.ReadAll(io.LimitReader(req.Body, maxHashedBody+1))
	if err != nil {
		return "", "", fmt.Errorf("aws-sigv4: reading the request body: %v", err)
	}
	orig := req.Body
	if len(buf) <= maxHashedBody && req.ContentLength > 0 && int64(len(buf)) < req.ContentLength {
		return "", "", errors.New("aws-sigv4: the request body is shorter than its Content-Length")
	}
	if len(buf) > maxHashedBody {
		if !s3Services[service] {
			return "", "", fmt.Errorf("aws-sigv4: a %s request body over %d bytes without X-Amz-Content-Sha256 cannot be re-signed (its hash would need the whole body in memory)", service, maxHashedBody)
		}
		req.Body = readCloser{io.MultiReader(bytes.NewReader(buf), orig), orig}
		req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
		return unsignedPayload, "", nil
	}
	sum := sha256.Sum256(buf)
	if len(buf) == 0 {
		orig.Close()
		req.Body, req.ContentLength, req.TransferEncoding, req.GetBody = http.NoBody, 0, nil, nil
		return emptySHA256, "", nil
	}
	req.Body = readCloser{bytes.NewReader(buf), orig}
	if req.ContentLength < 0 {
		req.ContentLength = int64(len(buf)) // known now; lets the signer cover it
		req.TransferEncoding = nil
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return hex.EncodeToString(sum[:]), "", nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// unsignableHeaders never reach the upstream as the client sent them: the
// proxy drops hop-by-hop headers, and the signer sets the rest itself.
var unsignableHeaders = map[string]bool{
	"host": true, "content-length": true, "authorization": true, "x-amz-date": true,
	"x-amz-security-token": true, "connection": true, "proxy-connection": true,
	"keep-alive": true, "proxy-authorization": true, "proxy-authenticate": true,
	"te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
	"expect": true, // answered by the proxy itself, never forwarded
}

// signingCopy is the request as the signer should see it: the same method,
// URL, host and length, with only the headers the client chose to sign.
// Signing the client's choice, not every header, keeps the signature valid
// whatever the proxy or its transport adds or drops on the way out.
func signingCopy(req *http.Request, signed []string) *http.Request {
	u := *req.URL
	sreq := &http.Request{Method: req.Method, URL: &u, Host: req.Host, ContentLength: req.ContentLength, Header: http.Header{}}
	if u.Scheme == "" {
		u.Scheme = "https" // the default port is dropped from the signed host
	}
	conn := map[string]bool{}
	for _, v := range req.Header.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			conn[strings.ToLower(strings.TrimSpace(f))] = true
		}
	}
	for _, name := range signed {
		if unsignableHeaders[name] || conn[name] {
			continue
		}
		if vs := req.Header.Values(name); len(vs) > 0 {
			sreq.Header[http.CanonicalHeaderKey(name)] = vs
		}
	}
	return sreq
}

// presignParams are the query parameters a presigned URL's signature puts
// there; everything else (X-Amz-Expires included) is the client's request.
var presignParams = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}

func resignQuery(req *http.Request, creds aws.Credentials, q url.Values) error {
	sc, ok := parseScope(q.Get("X-Amz-Credential"))
	if !ok {
		return errors.New("aws-sigv4: the presigned URL has no valid credential scope (DATE/REGION/SERVICE/aws4_request)")
	}
	if sh := q.Get("X-Amz-SignedHeaders"); sh != "" {
		sc.signed = strings.Split(strings.ToLower(sh), ";")
	}
	t := signingTime(q.Get("X-Amz-Date"))
	hash := unsignedPayload // S3 presigned URLs never sign the payload
	if !s3Services[sc.service] {
		var err error
		if hash, _, err = payloadHash(req, sc.service); err != nil {
			return err
		}
		if strings.HasPrefix(hash, "STREAMING-") {
			return errors.New("aws-sigv4: a presigned URL cannot carry a streaming payload")
		}
	}
	for _, p := range presignParams {
		q.Del(p)
	}
	req.URL.RawQuery = q.Encode()
	sreq := signingCopy(req, sc.signed)
	signedURL, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, sreq, hash, sc.service, sc.region, t,
		func(o *v4.SignerOptions) {
			o.DisableHeaderHoisting = true // headers stay headers, as the client sent them
			o.DisableURIPathEscaping = s3Services[sc.service]
		})
	if err != nil {
		return fmt.Errorf("aws-sigv4: presigning failed: %v", err)
	}
	su, err := url.Parse(signedURL)
	if err != nil {
		return fmt.Errorf("aws-sigv4: presigning produced a bad URL")
	}
	req.URL.RawQuery = su.RawQuery
	return nil
}

// signingKey derives the SigV4 key for one day, region and service.
func signingKey(secretKey string, sc scope, t time.Time) []byte {
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	k := mac([]byte("AWS4"+secretKey), t.UTC().Format("20060102"))
	k = mac(k, sc.region)
	k = mac(k, sc.service)
	return mac(k, "aws4_request")
}

// chunkResigner rewrites an aws-chunked body signed chunk by chunk: each
// chunk's signature chains from the previous one, starting at the request's
// own signature, so all of them change with the key. The framing, sizes and
// data pass through unchanged.
type chunkResigner struct {
	src     *bufio.Reader
	closer  io.Closer
	key     []byte
	prefix  string // "\n" + date + "\n" + scope + "\n", shared by every string to sign
	prev    string
	trailer bool

	out   bytes.Buffer
	state int // stateChunks, stateTrailers, stateDone
	err   error
}

const (
	stateChunks = iota
	stateTrailers
	stateDone
)

func newChunkResigner(body io.ReadCloser, creds aws.Credentials, sc scope, t time.Time, seed string, trailer bool) io.ReadCloser {
	if body == nil {
		body = http.NoBody
	}
	st := t.UTC()
	credScope := st.Format("20060102") + "/" + sc.region + "/" + sc.service + "/aws4_request"
	return &chunkResigner{
		src:     bufio.NewReaderSize(body, 64<<10),
		closer:  body,
		key:     signingKey(creds.SecretAccessKey, sc, st),
		prefix:  "\n" + st.Format(amzDateFormat) + "\n" + credScope + "\n",
		prev:    seed,
		trailer: trailer,
	}
}

func (c *chunkResigner) Close() error { return c.closer.Close() }

func (c *chunkResigner) Read(p []byte) (int, error) {
	for c.out.Len() == 0 && c.err == nil {
		if c.state == stateDone {
			c.err = io.EOF
			break
		}
		if err := c.step(); err != nil {
			c.err = fmt.Errorf("aws-sigv4: aws-chunked body: %w", err)
		}
	}
	if c.out.Len() > 0 {
		return c.out.Read(p)
	}
	return 0, c.err
}

func (c *chunkResigner) sign(kind, tail string) string {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte(kind + c.prefix + c.prev + "\n" + tail))
	return hex.EncodeToString(h.Sum(nil))
}

// line reads one CRLF-terminated line without its CRLF. At EOF, a last line
// without CRLF is returned with ok=false.
func (c *chunkResigner) line() (string, bool, error) {
	var b []byte
	for {
		frag, err := c.src.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > maxChunkLine {
			return "", false, errors.New("line too long")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return string(b), false, nil
		}
		if err != nil {
			return "", false, err
		}
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			return "", false, errors.New("line not terminated by CRLF")
		}
		return string(b[:len(b)-2]), true, nil
	}
}

func (c *chunkResigner) step() error {
	switch c.state {
	case stateChunks:
		return c.chunk()
	case stateTrailers:
		return c.trailers()
	}
	return nil
}

func (c *chunkResigner) chunk() error {
	ln, ok, err := c.line()
	if err != nil {
		return err
	}
	if !ok {
		return io.ErrUnexpectedEOF
	}
	sizeTok, ext, _ := strings.Cut(ln, ";")
	sig, hasSig := strings.CutPrefix(ext, "chunk-signature=")
	if !hasSig || len(sig) != 64 {
		return errors.New("chunk without a chunk-signature")
	}
	size, err := strconv.ParseInt(sizeTok, 16, 64)
	if err != nil || size < 0 {
		return errors.New("bad chunk size")
	}
	if size > maxChunk {
		return fmt.Errorf("chunk of %d bytes exceeds %d", size, maxChunk)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(c.src, data); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	sum := sha256.Sum256(data)
	c.prev = c.sign("AWS4-HMAC-SHA256-PAYLOAD", emptySHA256+"\n"+hex.EncodeToString(sum[:]))
	fmt.Fprintf(&c.out, "%s;chunk-signature=%s\r\n", sizeTok, c.prev)
	c.out.Write(data)
	if size > 0 {
		end, ok, err := c.line()
		if err != nil || !ok || end != "" {
			return errors.New("chunk data not followed by CRLF")
		}
		c.out.WriteString("\r\n")
		return nil
	}
	if c.trailer {
		c.state = stateTrailers
		return nil
	}
	end, ok, err := c.line()
	if err != nil || end != "" {
		return errors.New("final chunk not followed by an empty line")
	}
	if ok {
		c.out.WriteString("\r\n")
	}
	c.state = stateDone
	return nil
}

// trailers copies the trailing headers and re-signs x-amz-trailer-signature,
// whose string to sign hashes "name:value\n" for each trailer, sorted.
func (c *chunkResigner) trailers() error {
	const sigName = "x-amz-trailer-signature"
	var canon []string
	for {
		ln, ok, err := c.line()
		if err != nil {
			return err
		}
		if ln == "" {
			if ok {
				c.out.WriteString("\r\n")
			}
			c.state = stateDone
			return nil
		}
		if len(ln) > len(sigName) && strings.EqualFold(ln[:len(sigName)], sigName) {
			// Most clients write "name:SIG", some "name=SIG"; keep theirs.
			sort.Strings(canon)
			sum := sha256.Sum256([]byte(strings.Join(canon, "")))
			c.out.WriteString(ln[:len(sigName)+1] + c.sign("AWS4-HMAC-SHA256-TRAILER", hex.EncodeToString(sum[:])))
		} else {
			name, value, found := strings.Cut(ln, ":")
			if !found {
				return errors.New("bad trailer line")
			}
			canon = append(canon, strings.ToLower(strings.TrimSpace(name))+":"+strings.TrimSpace(value)+"\n")
			c.out.WriteString(ln)
		}
		if !ok {
			c.state = stateDone
			return nil
		}
		c.out.WriteString("\r\n")
	}
}

// AWSDummyEnv returns the variables the child gets for an aws-sigv4
// credential: well-formed dummy keys its SDK can sign with, and a dummy
// session token only when the real credentials have one. The proxy replaces
// the whole signature, so the dummies never need to be right.
func AWSDummyEnv(secret string) (map[string]string, error) {
	c, err := parseAWSCredentials(secret)
	if err != nil {
		return nil, err
	}
	id, key := DummyAWSCredentials()
	env := map[string]string{"AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": key}
	if c.SessionToken != "" {
		tok := make([]byte, 96)
		rand.Read(tok)
		env["AWS_SESSION_TOKEN"] = base64.StdEncoding.EncodeToString(tok)
	}
	return env, nil
}
