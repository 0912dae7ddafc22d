package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentvault/agentvault/internal/testsupport"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

var (
	realCreds  = aws.Credentials{AccessKeyID: "AKIAREALKEY000000001", SecretAccessKey: "real/Secret+Key0123456789abcdefghijklmnop"}
	realTokens = aws.Credentials{AccessKeyID: "ASIAREALKEY000000002", SecretAccessKey: "real/Temp+Key0123456789abcdefghijklmnopqr", SessionToken: "FwoGZXIvYXdzEReal//Session+Token=="}
)

func credJSON(c aws.Credentials) string {
	if c.SessionToken == "" {
		return fmt.Sprintf(`{"access_key_id":%q,"secret_access_key":%q}`, c.AccessKeyID, c.SecretAccessKey)
	}
	return fmt.Sprintf(`{"AccessKeyId":%q,"SecretAccessKey":%q,"SessionToken":%q}`, c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ---- the upstream: an HTTPS server that checks signatures itself ----

// sigv4Upstream verifies every request's SigV4 signature against the real
// credentials (testsupport.VerifySigV4); it answers 403 with the reason when
// the signature does not match.
type sigv4Upstream struct {
	srv   *httptest.Server
	creds aws.Credentials
	// reply, when set, writes the answer to a verified request.
	reply func(w http.ResponseWriter, r *http.Request)

	mu       sync.Mutex
	payloads [][]byte // decoded payload of each verified request
	headers  []http.Header
}

func newSigV4Upstream(t *testing.T, creds aws.Credentials) *sigv4Upstream {
	t.Helper()
	u := &sigv4Upstream{creds: creds}
	u.srv = httptest.NewTLSServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *sigv4Upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	res, err := testsupport.VerifySigV4(r, body, u.creds)
	if err != nil {
		http.Error(w, "signature check failed: "+err.Error(), http.StatusForbidden)
		return
	}
	u.mu.Lock()
	u.payloads = append(u.payloads, res.Payload)
	h := r.Header.Clone()
	h.Set("Host", r.Host) // for the tests: the Host the upstream saw
	u.headers = append(u.headers, h)
	u.mu.Unlock()
	if u.reply != nil {
		u.reply(w, r)
		return
	}
	fmt.Fprint(w, "verified")
}

func (u *sigv4Upstream) last(t *testing.T) ([]byte, http.Header) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.payloads) == 0 {
		t.Fatal("the upstream verified no request")
	}
	return u.payloads[len(u.payloads)-1], u.headers[len(u.headers)-1]
}

// transport reaches the upstream whatever host the URL names, the way the
// proxy's dialer does with --connect-to.
func (u *sigv4Upstream) transport() *http.Transport {
	pool := x509.NewCertPool()
	pool.AddCert(u.srv.Certificate())
	addr := u.srv.Listener.Addr().String()
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"},
	}
}

// ---- the client side: requests signed with dummy keys ----

func dummyCreds(token string) aws.Credentials {
	id, secret := DummyAWSCredentials()
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: token}
}

// clientRequest is a request as an SDK holding dummy keys builds and signs it.
type clientRequest struct {
	method, url     string
	header          http.Header
	body            []byte
	service, region string
	payloadHash     string // "" = SHA-256 of body
	dummyToken      string
	hostHeader      string // sent instead of the URL's host, as curl does with an explicit port
	// chunked, when set, turns body into an aws-chunked stream: "signed",
	// "signed-trailer" or "unsigned-trailer".
	chunked   string
	chunkSize int
}

func (c clientRequest) build(t *testing.T) *http.Request {
	t.Helper()
	creds := dummyCreds(c.dummyToken)
	body := c.body
	hash := c.payloadHash
	header := c.header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if c.chunked != "" {
		hash = map[string]string{"signed": streamingSigned, "signed-trailer": streamingSignedTrail, "unsigned-trailer": streamingUnsignedTrail}[c.chunked]
		header.Set("Content-Encoding", "aws-chunked")
		header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(c.body)))
		header.Set("X-Amz-Content-Sha256", hash)
		if c.chunked != "signed" {
			header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		}
		// The length must be known before signing; signatures come after.
		body = encodeChunked(c.body, c.chunkSize, c.chunked, nil)
	}
	if hash == "" {
		hash = sha256Hex(body)
	}
	req, err := http.NewRequest(c.method, c.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	now := time.Now().UTC()
	err = v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, c.service, c.region, now,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = c.service == "s3" })
	if err != nil {
		t.Fatal(err)
	}
	if c.hostHeader != "" {
		req.Host = c.hostHeader
	}
	if strings.HasPrefix(c.chunked, "signed") {
		auth := req.Header.Get("Authorization")
		seed, _ := hex.DecodeString(auth[len(auth)-64:])
		ss := v4.NewStreamSigner(creds, c.service, c.region, seed)
		signed := encodeChunked(c.body, c.chunkSize, c.chunked, func(data []byte) string {
			s, _ := ss.GetSignature(context.Background(), nil, data, now)
			return hex.EncodeToString(s)
		})
		// A trailer signature with the dummy key: any 64 hex digits do, the
		// proxy never checks what it replaces.
		signed = bytes.Replace(signed, []byte("x-amz-trailer-signature:"+strings.Repeat("0", 64)),
			[]byte("x-amz-trailer-signature:"+strings.Repeat("d", 64)), 1)
		req.Body = io.NopCloser(bytes.NewReader(signed))
		req.ContentLength = int64(len(signed))
	}
	return req
}

// encodeChunked frames payload as aws-chunked. sign gives each chunk's
// signature (nil: zeros, or no signatures for unsigned-trailer).
func encodeChunked(payload []byte, size int, mode string, sign func([]byte) string) []byte {
	if size <= 0 {
		size = 64 << 10
	}
	var b bytes.Buffer
	emit := func(data []byte) {
		fmt.Fprintf(&b, "%x", len(data))
		if mode != "unsigned-trailer" {
			sig := strings.Repeat("0", 64)
			if sign != nil {
				sig = sign(data)
			}
			b.WriteString(";chunk-signature=" + sig)
		}
		b.WriteString("\r\n")
		b.Write(data)
		if len(data) > 0 {
			b.WriteString("\r\n")
		}
	}
	for i := 0; i < len(payload); i += size {
		emit(payload[i:min(i+size, len(payload))])
	}
	emit(nil)
	if mode != "signed" {
		b.WriteString("x-amz-checksum-crc32:" + testsupport.CRC32Base64(payload) + "\r\n")
		if mode == "signed-trailer" {
			b.WriteString("x-amz-trailer-signature:" + strings.Repeat("0", 64) + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// asProxySees writes req to the wire and parses it back as the proxy's MITM
// listener would, then points it at the CONNECT target as prepareTLS does.
func asProxySees(t *testing.T, req *http.Request, host string, port int) *http.Request {
	t.Helper()
	var wire bytes.Buffer
	if err := req.Write(&wire); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	r.URL.Scheme, r.URL.Host, r.RequestURI = "https", joinHostPort(host, port), ""
	return r
}

// resignAndSend is the proxy's part: re-sign, drop hop-by-hop headers as
// roundTrip does, and send to the upstream.
func resignAndSend(t *testing.T, up *sigv4Upstream, r *http.Request, secret, host string, port int) (int, string) {
	t.Helper()
	if err := resignAWS(r, secret, host, port); err != nil {
		t.Fatalf("resignAWS: %v", err)
	}
	removeHopHeaders(r.Header, false)
	res, err := up.transport().RoundTrip(r)
	if err != nil {
		t.Fatalf("sending to the upstream: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// ---- tests ----

func TestResignAWS(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16*10) // 2000 KiB
	tests := []struct {
		name  string
		creds aws.Credentials
		req   clientRequest
		host  string
		port  int
	}{
		{name: "GET with query", creds: realCreds, host: "iam.amazonaws.com",
			req: clientRequest{method: "GET", url: "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08&Marker=a%20b%2Bc", service: "iam", region: "us-east-1"}},
		{name: "POST JSON body", creds: realCreds, host: "secretsmanager.eu-west-1.amazonaws.com",
			req: clientRequest{method: "POST", url: "https://secretsmanager.eu-west-1.amazonaws.com/", service: "secretsmanager", region: "eu-west-1",
				header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}, "X-Amz-Target": {"secretsmanager.GetSecretValue"}},
				body:   []byte(`{"SecretId":"prod/db"}`)}},
		{name: "session token added", creds: realTokens, host: "sts.amazonaws.com",
			req: clientRequest{method: "POST", url: "https://sts.amazonaws.com/", service: "sts", region: "us-east-1",
				header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
				body:   []byte("Action=GetCallerIdentity&Version=2011-06-15")}},
		{name: "dummy session token removed", creds: realCreds, host: "sts.amazonaws.com",
			req: clientRequest{method: "GET", url: "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", service: "sts", region: "us-east-1",
				dummyToken: "dummy-session-token"}},
		{name: "dummy session token replaced", creds: realTokens, host: "sts.amazonaws.com",
			req: clientRequest{method: "GET", url: "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", service: "sts", region: "us-east-1",
				dummyToken: "dummy-session-token"}},
		{name: "S3 UNSIGNED-PAYLOAD with escaped key", creds: realCreds, host: "bucket.s3.eu-west-1.amazonaws.com",
			req: clientRequest{method: "PUT", url: "https://bucket.s3.eu-west-1.amazonaws.com/dir/a%20b%2Bc%3Dd.txt", service: "s3", region: "eu-west-1",
				payloadHash: unsignedPayload, body: big,
				header: http.Header{"X-Amz-Content-Sha256": {unsignedPayload}, "Content-Type": {"text/plain"}, "X-Amz-Meta-Owner": {"agent"}}}},
		{name: "S3 hashed payload", creds: realTokens, host: "s3.us-east-1.amazonaws.com",
			req: clientRequest{method: "PUT", url: "https://s3.us-east-1.amazonaws.com/bucket/key", service: "s3", region: "us-east-1",
				body: []byte("hello"), header: http.Header{"X-Amz-Content-Sha256": {sha256Hex([]byte("hello"))}}}},
		{name: "non-S3 path escaped twice", creds: realCreds, host: "abc123.execute-api.us-east-1.amazonaws.com",
			req: clientRequest{method: "GET", url: "https://abc123.execute-api.us-east-1.amazonaws.com/prod/items/a%20b%2Fc", service: "execute-api", region: "us-east-1"}},
		{name: "hop-by-hop header the client signed", creds: realCreds, host: "dynamodb.us-east-1.amazonaws.com",
			req: clientRequest{method: "POST", url: "https://dynamodb.us-east-1.amazonaws.com/", service: "dynamodb", region: "us-east-1",
				header: http.Header{"Connection": {"keep-alive"}, "Content-Type": {"application/x-amz-json-1.0"}, "X-Amz-Target": {"DynamoDB_20120810.ListTables"}},
				body:   []byte(`{}`)}},
		{name: "non-default port", creds: realCreds, host: "vpce-1.sqs.us-east-1.vpce.amazonaws.com", port: 8443,
			req: clientRequest{method: "GET", url: "https://vpce-1.sqs.us-east-1.vpce.amazonaws.com:8443/?Action=ListQueues", service: "sqs", region: "us-east-1"}},
		{name: "Host header with the default port", creds: realCreds, host: "sts.amazonaws.com",
			req: clientRequest{method: "GET", url: "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", service: "sts", region: "us-east-1",
				hostHeader: "sts.amazonaws.com:443"}},
		{name: "large S3 body without hash header goes UNSIGNED-PAYLOAD", creds: realCreds, host: "s3.amazonaws.com",
			req: clientRequest{method: "PUT", url: "https://s3.amazonaws.com/bucket/big", service: "s3", region: "us-east-1", body: big}},
		{name: "streaming signed chunks", creds: realCreds, host: "s3.us-west-2.amazonaws.com",
			req: clientRequest{method: "PUT", url: "https://s3.us-west-2.amazonaws.com/bucket/stream", service: "s3", region: "us-west-2",
				body: big[:150<<10], chunked: "signed", chunkSize: 64 << 10}},
		{name: "streaming signed chunks with trailer and token", creds: realTokens, host: "s3.us-west-2.amazonaws.com",
			req: clientRequest{method: "PUT", url: "https://s3.us-west-2.amazonaws.com/bucket/stream", service: "s3", region: "us-west-2",
				body: big[:100<<10+7], chunked: "signed-trailer", chunkSize: 8 << 10}},
		{name: "streaming unsigned payload with trailer", creds: realCreds, host: "s3.us-west-2.amazonaws.com",
			req: clientRequest{method: "PUT", url: "https://s3.us-west-2.amazonaws.com/bucket/stream", service: "s3", region: "us-west-2",
				body: big, chunked: "unsigned-trailer", chunkSize: 64 << 10}},
		{name: "streaming empty object", creds: realCreds, host: "s3.us-west-2.amazonaws.com",
			req: clientRequest{method: "PUT", url: "https://s3.us-west-2.amazonaws.com/bucket/empty", service: "s3", region: "us-west-2",
				chunked: "signed-trailer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newSigV4Upstream(t, tt.creds)
			port := tt.port
			if port == 0 {
				port = 443
			}
			r := asProxySees(t, tt.req.build(t), tt.host, port)
			status, body := resignAndSend(t, up, r, credJSON(tt.creds), tt.host, port)
			if status != http.StatusOK {
				t.Fatalf("upstream answered %d: %s", status, body)
			}
			payload, hdr := up.last(t)
			wantHost := tt.host
			if port != 443 {
				wantHost = joinHostPort(tt.host, port)
			}
			if hdr.Get("Host") != wantHost {
				t.Errorf("upstream saw Host %q, want the CONNECT target %q", hdr.Get("Host"), wantHost)
			}
			if !bytes.Equal(payload, tt.req.body) {
				t.Errorf("upstream got a %d-byte payload, want the %d bytes sent", len(payload), len(tt.req.body))
			}
			if tt.req.dummyToken != "" && strings.Contains(strings.Join(hdr.Values("X-Amz-Security-Token"), ","), tt.req.dummyToken) {
				t.Error("the dummy session token reached the upstream")
			}
		})
	}
}

// TestResignAWSStreamsBody checks that bodies with a payload mode in their
// headers are not read by resignAWS (they stream with bounded memory).
func TestResignAWSStreamsBody(t *testing.T) {
	for _, mode := range []string{unsignedPayload, streamingUnsignedTrail, streamingSigned} {
		t.Run(mode, func(t *testing.T) {
			req, _ := http.NewRequest("PUT", "https://s3.amazonaws.com/b/k", nil)
			cr := &countingReader{}
			req.Body, req.ContentLength = io.NopCloser(cr), 10<<30
			req.Header.Set("X-Amz-Content-Sha256", mode)
			req.Header.Set("X-Amz-Date", time.Now().UTC().Format(amzDateFormat))
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIADUMMY/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="+strings.Repeat("0", 64))
			if err := resignAWS(req, credJSON(realCreds), "s3.amazonaws.com", 443); err != nil {
				t.Fatal(err)
			}
			if cr.n != 0 {
				t.Errorf("resignAWS read %d bytes of the body", cr.n)
			}
		})
	}
}

type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// TestResignAWSWithSDKClient runs real aws-sdk-go-v2 clients holding dummy
// keys: the requests they build cross the wire to the proxy's re-signing and
// on to an upstream that checks the signature with the real keys.
func TestResignAWSWithSDKClient(t *testing.T) {
	for _, creds := range []aws.Credentials{realCreds, realTokens} {
		t.Run("token="+strconv.FormatBool(creds.SessionToken != ""), func(t *testing.T) {
			up := newSigV4Upstream(t, creds)
			up.reply = func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Amz-Target") == "secretsmanager.GetSecretValue" {
					w.Header().Set("Content-Type", "application/x-amz-json-1.1")
					fmt.Fprint(w, `{"Name":"prod/db","SecretString":"from-upstream","VersionId":"v1"}`)
					return
				}
				w.Header().Set("Content-Type", "text/xml")
				fmt.Fprint(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/agent</Arn><UserId>AIDA</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`)
			}
			secret := credJSON(creds)
			hc := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
				host, port, _ := splitTarget(req.URL.Host, 443)
				r := asProxySees(t, req, host, port)
				if err := resignAWS(r, secret, host, port); err != nil {
					return nil, err
				}
				removeHopHeaders(r.Header, false)
				return up.transport().RoundTrip(r)
			})}
			dummy := dummyCreds("")
			provider := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return dummy, nil })

			sm := secretsmanager.New(secretsmanager.Options{Region: "eu-west-1", Credentials: provider, HTTPClient: hc, RetryMaxAttempts: 1})
			out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")})
			if err != nil {
				t.Fatalf("GetSecretValue through re-signing: %v", err)
			}
			if aws.ToString(out.SecretString) != "from-upstream" {
				t.Errorf("SecretString = %q", aws.ToString(out.SecretString))
			}

			st := sts.New(sts.Options{Region: "us-east-1", Credentials: provider, HTTPClient: hc, RetryMaxAttempts: 1})
			id, err := st.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatalf("GetCallerIdentity through re-signing: %v", err)
			}
			if aws.ToString(id.Account) != "123456789012" {
				t.Errorf("Account = %q", aws.ToString(id.Account))
			}

			// A presigned URL (as `aws eks get-token` makes) fetched through the proxy.
			pre, err := sts.NewPresignClient(st).PresignGetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(pre.Method, pre.URL, nil)
			for k, vs := range pre.SignedHeader {
				if k != "Host" {
					req.Header[k] = vs
				}
			}
			res, err := hc.Do(req)
			if err != nil {
				t.Fatalf("presigned request: %v", err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("presigned request: upstream answered %d: %s", res.StatusCode, b)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestResignAWSPresignedS3(t *testing.T) {
	for _, creds := range []aws.Credentials{realCreds, realTokens} {
		up := newSigV4Upstream(t, creds)
		req, _ := http.NewRequest("GET", "https://bucket.s3.eu-central-1.amazonaws.com/reports/q%201.csv?X-Amz-Expires=300&response-content-type=text%2Fcsv", nil)
		signedURL, _, err := v4.NewSigner().PresignHTTP(context.Background(), dummyCreds("dummy-token"), req, unsignedPayload, "s3", "eu-central-1", time.Now(),
			func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err != nil {
			t.Fatal(err)
		}
		preq, _ := http.NewRequest("GET", signedURL, nil)
		r := asProxySees(t, preq, "bucket.s3.eu-central-1.amazonaws.com", 443)
		if status, body := resignAndSend(t, up, r, credJSON(creds), "bucket.s3.eu-central-1.amazonaws.com", 443); status != http.StatusOK {
			t.Fatalf("token=%v: upstream answered %d: %s", creds.SessionToken != "", status, body)
		}
		if r.URL.Query().Get("X-Amz-Expires") != "300" || r.URL.Query().Get("response-content-type") != "text/csv" {
			t.Errorf("the client's query parameters were not kept: %s", r.URL.RawQuery)
		}
	}
}

// TestResignAWSKnownAnswer pins the result to AWS's published SigV4 test
// suite (get-vanilla), independently of the SDK used to verify elsewhere.
func TestResignAWSKnownAnswer(t *testing.T) {
	req, _ := http.NewRequest("GET", "https://example.amazonaws.com/", nil)
	req.Header.Set("X-Amz-Date", "20150830T123600Z")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIADUMMYDUMMYDUMMY0/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("f", 64))
	secret := `{"access_key_id":"AKIDEXAMPLE","secret_access_key":"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}`
	if err := resignAWS(req, secret, "example.amazonaws.com", 443); err != nil {
		t.Fatal(err)
	}
	want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
	if got := req.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization =\n %s\nwant\n %s", got, want)
	}
}

// TestResignAWSChunkedKnownAnswer re-signs the chunked upload example of the
// S3 documentation (sigv4-streaming) and expects its published signatures.
func TestResignAWSChunkedKnownAnswer(t *testing.T) {
	payload := bytes.Repeat([]byte("a"), 66560)
	body := encodeChunked(payload, 65536, "signed", nil)
	req, _ := http.NewRequest("PUT", "https://s3.amazonaws.com/examplebucket/chunkObject.txt", bytes.NewReader(body))
	for k, v := range map[string]string{
		"X-Amz-Date": "20130524T000000Z", "X-Amz-Storage-Class": "REDUCED_REDUNDANCY",
		"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": "66560",
		"X-Amz-Content-Sha256": streamingSigned,
		"Authorization": "AWS4-HMAC-SHA256 Credential=AKIADUMMY/20130524/us-east-1/s3/aws4_request, " +
			"SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class, Signature=" + strings.Repeat("0", 64),
	} {
		req.Header.Set(k, v)
	}
	if req.ContentLength != 66824 {
		t.Fatalf("test body is %d bytes, the example's is 66824", req.ContentLength)
	}
	secret := `{"access_key_id":"AKIAIOSFODNN7EXAMPLE","secret_access_key":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`
	if err := resignAWS(req, secret, "s3.amazonaws.com", 443); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Authorization"); !strings.HasSuffix(got, "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9") {
		t.Errorf("seed Authorization = %s", got)
	}
	out, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(body) {
		t.Errorf("re-signed body is %d bytes, want %d", len(out), len(body))
	}
	for _, sig := range []string{
		"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
	} {
		if !bytes.Contains(out, []byte(sig+"\r\n")) {
			t.Errorf("re-signed body lacks %q", sig)
		}
	}
}

func TestResignAWSErrors(t *testing.T) {
	sigv4Auth := func(service, signed string) string {
		return "AWS4-HMAC-SHA256 Credential=AKIADUMMY/20260101/us-east-1/" + service + "/aws4_request, SignedHeaders=" + signed + ", Signature=" + strings.Repeat("0", 64)
	}
	big := bytes.Repeat([]byte("x"), maxHashedBody+1)
	tests := []struct {
		name, secret, auth, rawURL string
		header                     http.Header
		body                       []byte
		contentLength              int64 // when set, overrides the body's length
		want                       string
		unsigned                   bool
	}{
		{name: "secret not JSON", secret: "AKIA:secret", auth: sigv4Auth("sts", "host"), want: "not a JSON object"},
		{name: "secret JSON array", secret: `["a"]`, auth: sigv4Auth("sts", "host"), want: "not a JSON object"},
		{name: "no key id", secret: `{"secret_access_key":"s3cr3t-value"}`, auth: sigv4Auth("sts", "host"), want: "no access key id"},
		{name: "no secret key", secret: `{"access_key_id":"AKIAX"}`, auth: sigv4Auth("sts", "host"), want: "no secret key"},
		{name: "secret key not a string", secret: `{"access_key_id":"AKIAX","secret_access_key":12345}`, auth: sigv4Auth("sts", "host"), want: `field "secret_access_key" of the secret is not a string`},
		{name: "conflicting key ids", secret: `{"access_key_id":"AKIAX","AccessKeyId":"AKIAY","secret_key":"s3cr3t-value"}`, auth: sigv4Auth("sts", "host"), want: "two different values for its access key id"},
		{name: "line break in token", secret: `{"access_key_id":"AKIAX","secret_key":"s3cr3t-value","session_token":"tok\r\nX-Evil: 1"}`, auth: sigv4Auth("sts", "host"), want: "session token contains a character that cannot be sent"},
		{name: "comma in key id", secret: `{"access_key_id":"AKIA,X","secret_key":"s3cr3t-value"}`, auth: sigv4Auth("sts", "host"), want: "access key id contains a character"},
		{name: "no signature", secret: credJSON(realCreds), unsigned: true},
		{name: "bearer auth", secret: credJSON(realCreds), auth: "Bearer abc", unsigned: true},
		{name: "sigv2", secret: credJSON(realCreds), auth: "AWS AKIADUMMY:c2lnbmF0dXJl", want: "signature version 2"},
		{name: "sigv4a", secret: credJSON(realCreds), auth: "AWS4-ECDSA-P256-SHA256 Credential=AKIADUMMY/20260101/s3/aws4_request, SignedHeaders=host, Signature=00", want: "SigV4a"},
		{name: "bad scope", secret: credJSON(realCreds), auth: "AWS4-HMAC-SHA256 Credential=AKIADUMMY/us-east-1/s3, SignedHeaders=host, Signature=00", want: "no valid credential scope"},
		{name: "bad scope date", secret: credJSON(realCreds), auth: "AWS4-HMAC-SHA256 Credential=AKIADUMMY/2026xx01/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00", want: "no valid credential scope"},
		{name: "event stream", secret: credJSON(realCreds), auth: sigv4Auth("transcribe", "host;x-amz-content-sha256"),
			header: http.Header{"X-Amz-Content-Sha256": {"STREAMING-AWS4-HMAC-SHA256-EVENTS"}}, want: "STREAMING-AWS4-HMAC-SHA256-EVENTS (event streams, SigV4a) cannot be re-signed"},
		{name: "bogus payload hash", secret: credJSON(realCreds), auth: sigv4Auth("s3", "host;x-amz-content-sha256"),
			header: http.Header{"X-Amz-Content-Sha256": {"not-a-hash"}}, want: "neither a SHA-256 hex digest"},
		{name: "large body without hash, not S3", secret: credJSON(realCreds), auth: sigv4Auth("lambda", "host"), body: big, want: "a lambda request body over 1048576 bytes"},
		{name: "body shorter than Content-Length", secret: credJSON(realCreds), auth: sigv4Auth("sqs", "host"), body: []byte("abc"), contentLength: 10, want: "shorter than its Content-Length"},
		{name: "presigned sigv4a", secret: credJSON(realCreds), rawURL: "https://s3.amazonaws.com/b/k?X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=x", want: `algorithm "AWS4-ECDSA-P256-SHA256" cannot be re-signed`},
		{name: "presigned bad scope", secret: credJSON(realCreds), rawURL: "https://s3.amazonaws.com/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2Fx", want: "presigned URL has no valid credential scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.rawURL
			if u == "" {
				u = "https://svc.us-east-1.amazonaws.com/"
			}
			req, _ := http.NewRequest("POST", u, bytes.NewReader(tt.body))
			if tt.contentLength != 0 {
				req.ContentLength = tt.contentLength
			}
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			err := resignAWS(req, tt.secret, "svc.us-east-1.amazonaws.com", 443)
			if tt.unsigned {
				if !errors.Is(err, errAWSUnsigned) {
					t.Fatalf("error = %v, want errAWSUnsigned", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			for _, v := range []string{"s3cr3t-value", realCreds.SecretAccessKey, "tok\r\n"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q leaks a secret value", err)
				}
			}
		})
	}
}

func TestSigV4CredentialApply(t *testing.T) {
	mk := func(secret string) *credential {
		c, err := compileCredential(&Credential{Name: "aws", Placeholder: "PH-aws-000000", Hosts: []string{"*.amazonaws.com"},
			Inject: []Injection{{Type: "aws-sigv4"}}, Secret: staticSecret(secret)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	dummySigned := func() *http.Request {
		req, _ := http.NewRequest("GET", "https://sts.amazonaws.com/", nil)
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIADUMMY/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00")
		req.Header.Set("X-Amz-Date", "20260101T000000Z")
		return req
	}
	if _, err := mk("not json").apply(dummySigned(), "sts.amazonaws.com", 443); err == nil || strings.Contains(err.Error(), "not json") {
		t.Errorf("bad secret: err = %v", err)
	}
	req := dummySigned()
	ok, err := mk(credJSON(realCreds)).apply(req, "sts.amazonaws.com", 443)
	if err != nil || !ok || !strings.Contains(req.Header.Get("Authorization"), "Credential="+realCreds.AccessKeyID+"/") {
		t.Errorf("apply: ok=%v err=%v Authorization %q", ok, err, req.Header.Get("Authorization"))
	}
	plain, _ := http.NewRequest("GET", "https://s3.amazonaws.com/public/object", nil)
	if ok, err := mk(credJSON(realCreds)).apply(plain, "s3.amazonaws.com", 443); ok || err != nil {
		t.Errorf("unsigned request: ok=%v err=%v, want it passed on untouched", ok, err)
	}
	if ok, _ := mk(credJSON(realCreds)).apply(dummySigned(), "sts.amazonaws.com", 8443); ok {
		t.Error("re-signed for a port the credential is not bound to")
	}
	vals := mk(credJSON(realCreds)).values()
	if len(vals) < 2 || vals[0] != realCreds.AccessKeyID || vals[1] != realCreds.SecretAccessKey {
		t.Errorf("values() = %d entries, want the key id and secret key", len(vals))
	}
}

func TestAWSDummyEnv(t *testing.T) {
	env, err := AWSDummyEnv(`{"access_key_id":"AKIAREAL0000000000000","secret_access_key":"real"}`)
	if err != nil || len(env) != 2 || !strings.HasPrefix(env["AWS_ACCESS_KEY_ID"], "AKIA") || len(env["AWS_SECRET_ACCESS_KEY"]) != 40 {
		t.Fatalf("%v %v", env, err)
	}
	env, err = AWSDummyEnv(`{"access_key_id":"ASIAREAL","secret_access_key":"real","session_token":"tok"}`)
	if err != nil || env["AWS_SESSION_TOKEN"] == "" || env["AWS_SESSION_TOKEN"] == "tok" {
		t.Fatalf("%v %v", env, err)
	}
}

func TestParseAWSCredentials(t *testing.T) {
	tests := []struct {
		secret string
		want   aws.Credentials
	}{
		{`{"access_key_id":"AKIA1","secret_access_key":"s1"}`, aws.Credentials{AccessKeyID: "AKIA1", SecretAccessKey: "s1"}},
		{`{"AccessKeyId":"AKIA1","SecretAccessKey":"s1","SessionToken":"t1"}`, aws.Credentials{AccessKeyID: "AKIA1", SecretAccessKey: "s1", SessionToken: "t1"}},
		// Vault aws/creds
		{`{"access_key":"AKIA1","secret_key":"s1","security_token":null,"arn":"arn:aws:iam::1:user/x"}`, aws.Credentials{AccessKeyID: "AKIA1", SecretAccessKey: "s1"}},
		{`{"access_key":"ASIA1","secret_key":"s1","security_token":"t1"}`, aws.Credentials{AccessKeyID: "ASIA1", SecretAccessKey: "s1", SessionToken: "t1"}},
		// credential_process output and ~/.aws/credentials-style names
		{`{"Version":1,"AccessKeyId":"ASIA1","SecretAccessKey":"s1","SessionToken":"t1","Expiration":"2030-01-01T00:00:00Z"}`, aws.Credentials{AccessKeyID: "ASIA1", SecretAccessKey: "s1", SessionToken: "t1"}},
		{`{"aws_access_key_id":"AKIA1","aws_secret_access_key":"s1","aws_session_token":"t1"}`, aws.Credentials{AccessKeyID: "AKIA1", SecretAccessKey: "s1", SessionToken: "t1"}},
		// The same value under two names is not a conflict.
		{`{"access_key_id":"AKIA1","AccessKeyId":"AKIA1","secret_key":"s1"}`, aws.Credentials{AccessKeyID: "AKIA1", SecretAccessKey: "s1"}},
	}
	for _, tt := range tests {
		got, err := parseAWSCredentials(tt.secret)
		if err != nil {
			t.Errorf("parseAWSCredentials(%s): %v", tt.secret, err)
			continue
		}
		if got != tt.want {
			t.Errorf("parseAWSCredentials(%s) = %+v, want %+v", tt.secret, got, tt.want)
		}
	}
}

func TestDummyAWSCredentials(t *testing.T) {
	idRE := regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
	secretRE := regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
	id1, s1 := DummyAWSCredentials()
	id2, s2 := DummyAWSCredentials()
	for _, id := range []string{id1, id2} {
		if !idRE.MatchString(id) {
			t.Errorf("access key id %q is not shaped like AKIA + 16 base32 characters", id)
		}
	}
	for _, s := range []string{s1, s2} {
		if !secretRE.MatchString(s) {
			t.Errorf("secret key %q is not 40 base64 characters", s)
		}
	}
	if id1 == id2 || s1 == s2 {
		t.Error("two calls returned the same dummy credentials")
	}
}

// TestChunkResignerRejectsMalformed feeds broken aws-chunked bodies: the
// read fails, so the upstream sees a broken request rather than one whose
// chunks the proxy could not vouch for.
func TestChunkResignerRejectsMalformed(t *testing.T) {
	sig := strings.Repeat("0", 64)
	tests := []struct{ name, body, want string }{
		{"no signature", "5\r\nhello\r\n0\r\n\r\n", "chunk without a chunk-signature"},
		{"short signature", "5;chunk-signature=abc\r\nhello\r\n", "chunk without a chunk-signature"},
		{"bad size", "zz;chunk-signature=" + sig + "\r\n", "bad chunk size"},
		{"huge chunk", "7fffffff;chunk-signature=" + sig + "\r\n", "exceeds"},
		{"truncated data", "10;chunk-signature=" + sig + "\r\nhello", "unexpected EOF"},
		{"data without CRLF", "5;chunk-signature=" + sig + "\r\nhelloXX0;chunk-signature=" + sig + "\r\n\r\n", "not followed by CRLF"},
		{"bare LF", "5;chunk-signature=" + sig + "\nhello\r\n", "not terminated by CRLF"},
		{"no final chunk", "5;chunk-signature=" + sig + "\r\nhello\r\n", "unexpected EOF"},
		{"long line", strings.Repeat("1", 5000) + "\r\n", "line too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scope{date: "20260101", region: "us-east-1", service: "s3"}
			r := newChunkResigner(io.NopCloser(strings.NewReader(tt.body)), realCreds, sc, time.Now(), sig, false)
			_, err := io.ReadAll(r)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "aws-chunked") {
				t.Fatalf("error = %v, want an aws-chunked error containing %q", err, tt.want)
			}
		})
	}
}
