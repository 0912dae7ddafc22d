package e2e

// End-to-end tests of aws-sigv4 re-signing and of the aws-secretsmanager
// backend. The AWS clients (testdata/awsclient on aws-sdk-go-v2, the aws CLI)
// run as agentvault's child holding only the dummy keys agentvault gives
// them; an HTTPS upstream standing in for the AWS endpoints recomputes every
// signature with the SDK's v4 signer and the REAL keys, and refuses the
// request when it does not match. moto checks no signatures, so the
// Secrets Manager tests use it only as a secret store.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentvault/agentvault/internal/testsupport"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

const (
	awsStreamSigned      = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	awsStreamSignedTrail = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	awsAccount           = "123456789012"
	awsBucketHost        = "e2e-bucket.s3.us-east-1.amazonaws.com"
)

// awsHosts are the AWS names the tests reach through --connect-to. The shared
// test CA's leaf names only example.test hosts, so these get their own CA,
// passed to agentvault with a second --upstream-ca.
var awsHosts = []string{"sts.us-east-1.amazonaws.com", "secretsmanager.us-east-1.amazonaws.com",
	"s3.us-east-1.amazonaws.com", awsBucketHost}

var (
	awsOnce      sync.Once
	awsCA        *testAuthority
	awsClientBin string
	awsSetupErr  error
)

// awsSetup makes the AWS CA and builds testdata/awsclient, once, and only
// for the tests that need them (the SDK build is not free).
func awsSetup(t *testing.T) {
	t.Helper()
	needBinary(t)
	awsOnce.Do(func() {
		awsCA, awsSetupErr = newTestAuthority(filepath.Join(tmpRoot, "aws-ca.pem"), awsHosts...)
		if awsSetupErr != nil {
			return
		}
		bin := filepath.Join(tmpRoot, "awsclient")
		if out, err := goBuild(bin, "./testdata/awsclient"); err != nil {
			awsSetupErr = fmt.Errorf("building testdata/awsclient: %v\n%s", err, out)
			return
		}
		awsClientBin = bin
	})
	if awsSetupErr != nil {
		t.Fatal(awsSetupErr)
	}
}

// awsEnv is agentvault's environment for the AWS tests (the child inherits
// it): a region, and no shared files or instance metadata for the SDKs to
// find anything else in.
func awsEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"AWS_REGION":                  "us-east-1",
		"AWS_DEFAULT_REGION":          "us-east-1",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             "/nonexistent/aws-config",
		"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// awsKeys returns random real-looking keys, with a session token if asked.
func awsKeys(t *testing.T, token bool) aws.Credentials {
	t.Helper()
	b := make([]byte, 38)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	c := aws.Credentials{
		AccessKeyID:     "AKIAE2E" + strings.ToUpper(hex.EncodeToString(b[:7]))[:13],
		SecretAccessKey: "e2e/Real+" + base64.RawURLEncoding.EncodeToString(b[7:])[:31],
	}
	if token {
		c.AccessKeyID = "ASIA" + c.AccessKeyID[4:]
		c.SessionToken = "FwoGZXIvYXdzE2e2e//" + hex.EncodeToString(b) + "=="
	}
	return c
}

// awsKeysJSON is the secret an aws-sigv4 credential takes. sm uses the names
// Secrets Manager's rotation templates use.
func awsKeysJSON(c aws.Credentials, sm bool) string {
	m := map[string]string{"access_key_id": c.AccessKeyID, "secret_access_key": c.SecretAccessKey}
	if sm {
		m = map[string]string{"AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey}
	}
	switch {
	case c.SessionToken != "" && sm:
		m["SessionToken"] = c.SessionToken
	case c.SessionToken != "":
		m["session_token"] = c.SessionToken
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// awsKeysList holds keys whose every part must stay out of the child's reach.
type awsKeysList []aws.Credentials

func (c awsKeysList) values() []string {
	var out []string
	for _, k := range c {
		out = append(out, k.AccessKeyID, k.SecretAccessKey)
		if k.SessionToken != "" {
			out = append(out, k.SessionToken)
		}
	}
	return out
}

// sigv4Config is one aws-sigv4 credential; hosts "" keeps the default
// (*.amazonaws.com).
func sigv4Config(backends, secretRef, hosts string) string {
	cfg := "version: 1\n" + backends + "credentials:\n  - name: aws\n    secret: " + secretRef + "\n    inject: aws-sigv4\n"
	if hosts != "" {
		cfg += "    hosts: " + hosts + "\n"
	}
	return cfg
}

// awsSession runs the child script against up, every AWS host mapped to it.
func awsSession(t *testing.T, up *awsUpstream, config string, env map[string]string, script string) *session {
	t.Helper()
	var connect []string
	for _, h := range awsHosts {
		connect = append(connect, connectTo(h, 443, up.Port))
	}
	return runSession(t, sessionOpts{
		config:  config,
		env:     awsEnv(env),
		flags:   []string{"--upstream-ca", awsCA.PEMPath},
		connect: connect,
		script:  script,
	})
}

// awsStep is a child snippet: run a command, saving stdout in $OUT/name.out,
// stderr in $OUT/name.err and the status in $OUT/name.code.
func awsStep(name, cmd string) string {
	return fmt.Sprintf("%s > \"$OUT/%s.out\" 2> \"$OUT/%s.err\"; echo $? > \"$OUT/%s.code\"\n", cmd, name, name, name)
}

// stepOK fails unless the child's step exited 0.
func (s *session) stepOK(t *testing.T, name string) bool {
	t.Helper()
	if code := strings.TrimSpace(s.file(name + ".code")); code != "0" {
		t.Errorf("child step %s exited %q; stderr: %.1500s", name, code, s.file(name+".err"))
		return false
	}
	return true
}

// clientJSON decodes the OUT.json awsclient wrote.
func (s *session) clientJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s.file(name+".json")), &m); err != nil {
		t.Errorf("%s.json: %v", name, err)
	}
	return m
}

// assertAWSDummies checks the keys the child got: well-formed, not the real
// ones, a session token exactly when the real keys have one.
func assertAWSDummies(t *testing.T, s *session, real aws.Credentials, notThese ...string) {
	t.Helper()
	id, key := s.childEnv["AWS_ACCESS_KEY_ID"], s.childEnv["AWS_SECRET_ACCESS_KEY"]
	if !regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`).MatchString(id) {
		t.Errorf("child AWS_ACCESS_KEY_ID = %q, want a dummy AKIA key of 20 characters", id)
	}
	if len(key) != 40 {
		t.Errorf("child AWS_SECRET_ACCESS_KEY has %d characters, want 40", len(key))
	}
	for _, bad := range append([]string{real.AccessKeyID, real.SecretAccessKey}, notThese...) {
		if id == bad || key == bad {
			t.Error("the child's AWS keys are not dummies")
		}
	}
	tok, hasTok := s.childEnv["AWS_SESSION_TOKEN"]
	switch {
	case real.SessionToken == "" && hasTok:
		t.Error("child has AWS_SESSION_TOKEN although the real keys have none")
	case real.SessionToken != "" && (tok == "" || tok == real.SessionToken):
		t.Error("child AWS_SESSION_TOKEN is missing or real; want a dummy")
	}
	for _, k := range []string{"AWS_CA_BUNDLE", "HTTPS_PROXY"} {
		if s.childEnv[k] == "" {
			t.Errorf("child has no %s; the SDKs need it to go through the proxy", k)
		}
	}
}

// ---- the upstream: an HTTPS stand-in for AWS that checks signatures ----

// awsSeen is what the upstream made of one request.
type awsSeen struct {
	Method, Host, Path      string
	Service, Region, Target string
	ContentSHA256           string // the X-Amz-Content-Sha256 header
	Chunks                  int    // aws-chunked chunks whose signature was checked
	Payload                 int    // decoded payload bytes
	PayloadSHA256           string
	Err                     string // why the request was refused; "" = verified
}

type awsUpstream struct {
	Port  int
	creds aws.Credentials

	mu   sync.Mutex
	seen []awsSeen
}

func newAWSUpstream(t *testing.T, creds aws.Credentials) *awsUpstream {
	t.Helper()
	u := &awsUpstream{creds: creds}
	u.Port = serveTLS(t, u, awsCA.serverTLS())
	return u
}

func (u *awsUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := awsSeen{Method: r.Method, Host: r.Host, Path: r.URL.Path, Target: r.Header.Get("X-Amz-Target"),
		ContentSHA256: r.Header.Get("X-Amz-Content-Sha256")}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	var payload []byte
	if err == nil {
		var res testsupport.SigV4Result
		res, err = testsupport.VerifySigV4(r, body, u.creds)
		rec.Service, rec.Region, rec.Chunks, payload = res.Service, res.Region, res.Chunks, res.Payload
	}
	if err != nil {
		rec.Err = err.Error()
	} else {
		sum := sha256.Sum256(payload)
		rec.Payload, rec.PayloadSHA256 = len(payload), hex.EncodeToString(sum[:])
	}
	u.mu.Lock()
	u.seen = append(u.seen, rec)
	u.mu.Unlock()
	if err != nil {
		// Every protocol's client shows the message; it holds no secret.
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>%s</Message></Error></ErrorResponse>",
			strings.NewReplacer("<", "&lt;", "&", "&amp;").Replace(rec.Err))
		return
	}
	switch {
	case rec.Service == "sts":
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
			`<Arn>arn:aws:iam::%s:user/agent</Arn><UserId>AIDAE2E</UserId><Account>%s</Account></GetCallerIdentityResult>`+
			`<ResponseMetadata><RequestId>e2e</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, awsAccount, awsAccount)
	case rec.Target == "secretsmanager.GetSecretValue":
		var in struct{ SecretId string }
		json.Unmarshal(payload, &in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(map[string]any{"ARN": "arn:aws:secretsmanager:us-east-1:" + awsAccount + ":secret:" + in.SecretId,
			"Name": in.SecretId, "SecretString": "upstream-value-for-" + in.SecretId, "VersionId": "v1", "VersionStages": []string{"AWSCURRENT"}})
	case rec.Service == "s3" && r.Method == http.MethodPut:
		w.Header().Set("ETag", `"`+rec.PayloadSHA256[:32]+`"`)
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "the AWS test upstream does not serve this", http.StatusNotImplemented)
	}
}

func (u *awsUpstream) requests() []awsSeen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]awsSeen(nil), u.seen...)
}

// verified fails unless exactly want requests arrived and all were verified.
func (u *awsUpstream) verified(t *testing.T, want int) []awsSeen {
	t.Helper()
	got := u.requests()
	for _, r := range got {
		if r.Err != "" {
			t.Errorf("upstream refused %s %s%s (%s): %s", r.Method, r.Host, r.Path, r.Service, r.Err)
		}
	}
	if len(got) != want {
		t.Errorf("upstream got %d requests, want %d", len(got), want)
	}
	return got
}

// ---- tests ----

// TestSigV4GoSDK: aws-sdk-go-v2 with only the dummy keys agentvault gives it
// calls STS and Secrets Manager through agentvault; the upstream verifies
// every signature against the real keys.
func TestSigV4GoSDK(t *testing.T) {
	awsSetup(t)
	for _, token := range []bool{false, true} {
		t.Run("session-token="+strconv.FormatBool(token), func(t *testing.T) {
			real := awsKeys(t, token)
			up := newAWSUpstream(t, real)
			s := awsSession(t, up,
				sigv4Config("", "env:REAL_AWS_JSON", "[sts.us-east-1.amazonaws.com, secretsmanager.us-east-1.amazonaws.com]"),
				map[string]string{"REAL_AWS_JSON": awsKeysJSON(real, false)},
				awsStep("sts", fmt.Sprintf(`'%s' sts "$OUT/sts"`, awsClientBin))+
					awsStep("sm", fmt.Sprintf(`'%s' secret prod/db "$OUT/sm"`, awsClientBin)))
			if s.code != 0 {
				t.Errorf("exit %d", s.code)
			}
			if s.stepOK(t, "sts") {
				out := s.clientJSON(t, "sts")
				if out["account"] != awsAccount {
					t.Errorf("GetCallerIdentity account = %v", out["account"])
				}
				if out["key_id"] != s.childEnv["AWS_ACCESS_KEY_ID"] || out["credential_source"] != "EnvConfigCredentials" {
					t.Errorf("the SDK signed with %v from %v, want the child's AWS_ACCESS_KEY_ID from the environment",
						out["key_id"], out["credential_source"])
				}
			}
			if s.stepOK(t, "sm") {
				if got := s.clientJSON(t, "sm")["secret_string"]; got != "upstream-value-for-prod/db" {
					t.Errorf("GetSecretValue = %v", got)
				}
			}
			reqs := up.verified(t, 2)
			if len(reqs) == 2 && (reqs[0].Service != "sts" || reqs[1].Service != "secretsmanager" || reqs[1].Region != "us-east-1") {
				t.Errorf("upstream saw %+v", reqs)
			}
			for _, h := range []string{"sts.us-east-1.amazonaws.com", "secretsmanager.us-east-1.amazonaws.com"} {
				if n := len(auditFind(s.audit, map[string]any{"action": "inject", "host": h, "credential": "aws", "status": 200})); n != 1 {
					t.Errorf("audit log has %d inject records for %s by credential aws, want 1", n, h)
				}
			}
			assertAWSDummies(t, s, real)
			s.assertNoSecret(t, append(awsKeysList{real}.values(), awsKeysJSON(real, false))...)
		})
	}
}

// TestSigV4StreamingUpload: an S3 upload of a few MiB in aws-chunked frames
// whose chunk signatures chain from the (dummy) request signature; the proxy
// re-signs every chunk as it streams and the upstream checks them all.
func TestSigV4StreamingUpload(t *testing.T) {
	awsSetup(t)
	for _, tc := range []struct {
		mode  string
		size  int
		token bool
	}{
		{mode: "signed", size: 4 << 20},
		{mode: "signed-trailer", size: 3<<20 + 12345, token: true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			real := awsKeys(t, tc.token)
			up := newAWSUpstream(t, real)
			start := time.Now()
			s := awsSession(t, up, sigv4Config("", "env:REAL_AWS_JSON", ""), // default hosts: *.amazonaws.com
				map[string]string{"REAL_AWS_JSON": awsKeysJSON(real, false)},
				awsStep("put", fmt.Sprintf(`'%s' put https://s3.us-east-1.amazonaws.com/e2e-bucket/stream/a%%20b.bin %d %s "$OUT/put"`,
					awsClientBin, tc.size, tc.mode)))
			t.Logf("session with a %d-byte streamed upload: %s", tc.size, time.Since(start).Round(time.Millisecond))
			if s.code != 0 {
				t.Errorf("exit %d", s.code)
			}
			s.stepOK(t, "put")
			out := s.clientJSON(t, "put")
			reqs := up.verified(t, 1)
			if len(reqs) == 1 {
				r := reqs[0]
				wantMode := map[string]string{"signed": awsStreamSigned, "signed-trailer": awsStreamSignedTrail}[tc.mode]
				wantChunks := (tc.size+64<<10-1)/(64<<10) + 1
				if r.ContentSHA256 != wantMode || r.Chunks != wantChunks {
					t.Errorf("upstream saw %s with %d signed chunks, want %s with %d", r.ContentSHA256, r.Chunks, wantMode, wantChunks)
				}
				if r.Payload != tc.size || r.PayloadSHA256 != out["sha256"] {
					t.Errorf("upstream payload: %d bytes sha256 %s; client sent %d bytes sha256 %v", r.Payload, r.PayloadSHA256, tc.size, out["sha256"])
				}
				if r.Path != "/e2e-bucket/stream/a b.bin" || r.Service != "s3" {
					t.Errorf("upstream saw %s %s", r.Service, r.Path)
				}
			}
			assertAWSDummies(t, s, real)
			s.assertNoSecret(t, awsKeysList{real}.values()...)
		})
	}
}

// findAWSCLI prefers the real script under pyenv: a pyenv shim works too,
// but only through pyenv.
func findAWSCLI() string {
	if p := os.Getenv("AWS_CLI"); p != "" {
		return p
	}
	if out, err := exec.Command("pyenv", "root").Output(); err == nil {
		root := strings.TrimSpace(string(out))
		for _, pat := range []string{"versions/3.11.7/bin/aws", "versions/*/bin/aws"} {
			if m, _ := filepath.Glob(filepath.Join(root, pat)); len(m) > 0 {
				return m[0]
			}
		}
	}
	p, _ := exec.LookPath("aws")
	return p
}

// TestSigV4AWSCLI: the aws CLI (botocore) with the dummy keys, through
// agentvault: STS, and an S3 PutObject of a few MiB with botocore's default
// flexible checksum (an aws-chunked body with a checksum trailer).
func TestSigV4AWSCLI(t *testing.T) {
	awsSetup(t)
	cli := findAWSCLI()
	if cli == "" {
		// The CLI is not part of the toolchain a fresh machine or CI gets.
		t.Skip("aws CLI not found (set AWS_CLI to run this test)")
	}
	real := awsKeys(t, true)
	up := newAWSUpstream(t, real)
	work := t.TempDir()
	data := make([]byte, 3<<20+777)
	rand.Read(data)
	sum := sha256.Sum256(data)
	file := writeFile(t, work, "upload.bin", string(data))

	start := time.Now()
	s := awsSession(t, up, sigv4Config("", "env:REAL_AWS_JSON", ""),
		map[string]string{"REAL_AWS_JSON": awsKeysJSON(real, false)},
		awsStep("sts", fmt.Sprintf(`'%s' sts get-caller-identity --endpoint-url https://sts.us-east-1.amazonaws.com --output json`, cli))+
			awsStep("put", fmt.Sprintf(`'%s' s3api put-object --bucket e2e-bucket --key dir/obj.bin --body '%s' --endpoint-url https://s3.us-east-1.amazonaws.com --output json`, cli, file)))
	t.Logf("aws CLI session: %s", time.Since(start).Round(time.Millisecond))
	if s.code != 0 {
		t.Errorf("exit %d", s.code)
	}
	if s.stepOK(t, "sts") {
		var id struct{ Account string }
		if err := json.Unmarshal([]byte(s.file("sts.out")), &id); err != nil || id.Account != awsAccount {
			t.Errorf("aws sts get-caller-identity printed %.300q", s.file("sts.out"))
		}
	}
	if s.stepOK(t, "put") && !strings.Contains(s.file("put.out"), "ETag") {
		t.Errorf("aws s3api put-object printed %.300q", s.file("put.out"))
	}
	reqs := up.verified(t, 2)
	if len(reqs) == 2 {
		if reqs[0].Service != "sts" {
			t.Errorf("first request went to %s, want sts", reqs[0].Service)
		}
		put := reqs[1]
		if put.Service != "s3" || put.Method != http.MethodPut || put.Path != "/dir/obj.bin" && put.Path != "/e2e-bucket/dir/obj.bin" {
			t.Errorf("second request: %s %s %s%s", put.Service, put.Method, put.Host, put.Path)
		}
		if put.Payload != len(data) || put.PayloadSHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("upstream got a %d-byte payload (want %d) or other content", put.Payload, len(data))
		}
		t.Logf("aws CLI PutObject payload mode: %s, host %s", put.ContentSHA256, put.Host)
	}
	assertAWSDummies(t, s, real)
	s.assertNoSecret(t, awsKeysList{real}.values()...)
}

// ---- AWS Secrets Manager backend (moto) ----

// startMotoServer runs moto_server on a loopback port and returns its URL.
func startMotoServer(t *testing.T) string {
	t.Helper()
	bin := testsupport.MotoBinary()
	if bin == "" {
		skipOutsideCI(t, "moto_server not found (set MOTO_SERVER)")
	}
	return testsupport.StartMoto(t, bin)
}

// TestAWSSecretsManagerRun: agentvault resolves credentials from a real
// moto_server with the AWS keys of its own environment, and those keys do
// not reach the child.
func TestAWSSecretsManagerRun(t *testing.T) {
	awsSetup(t)
	moto := startMotoServer(t)
	token := newSecret(t, "sm-token")
	sigv4Keys := awsKeys(t, false)
	admin := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	ctx := context.Background()
	for name, value := range map[string]string{
		"mysecret": `{"token":"` + token + `","other":"x"}`,
		"awskeys":  awsKeysJSON(sigv4Keys, true),
	} {
		if _, err := admin.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatalf("creating %s in moto: %v", name, err)
		}
	}
	// agentvault's own AWS keys, for moto (which accepts any).
	motoKeys := awsKeys(t, false)
	motoEnv := map[string]string{"AWS_ACCESS_KEY_ID": motoKeys.AccessKeyID, "AWS_SECRET_ACCESS_KEY": motoKeys.SecretAccessKey}
	backends := fmt.Sprintf("backends:\n  aws:\n    type: aws-secretsmanager\n    region: us-east-1\n    endpoint: %s\n", moto)
	bearer := func(ref string) string {
		return "version: 1\n" + backends + "credentials:\n  - name: api\n    secret: " + ref +
			"\n    hosts: [api.example.test]\n    inject: bearer\n    env: [API_TOKEN]\n"
	}

	t.Run("bearer from a JSON key", func(t *testing.T) {
		up := newUpstream(t, true)
		s := runSession(t, sessionOpts{
			config:  bearer("aws:mysecret#token"),
			env:     awsEnv(motoEnv),
			connect: []string{connectTo("api.example.test", 443, up.Port)},
			script:  awsStep("get", fmt.Sprintf(`'%s' get https://api.example.test/ok/aws-sm "$OUT/r"`, goClientBin)),
		})
		if s.code != 0 {
			t.Errorf("exit %d", s.code)
		}
		s.stepOK(t, "get")
		s.response(t, "r", "200")
		if got := onlyOne(t, up, "/ok/aws-sm").Header.Get("Authorization"); got != "Bearer "+token {
			t.Errorf("upstream Authorization = %q, want Bearer <the Secrets Manager value>", redact(got, token, s.childEnv["API_TOKEN"]))
		}
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			if _, ok := s.childEnv[k]; ok {
				t.Errorf("%s (consumed by the aws backend) reached the child", k)
			}
		}
		if s.childEnv["AWS_REGION"] != "us-east-1" {
			t.Errorf("child AWS_REGION = %q: a non-credential AWS variable was dropped", s.childEnv["AWS_REGION"])
		}
		s.assertNoSecret(t, token, motoKeys.AccessKeyID, motoKeys.SecretAccessKey)
	})

	t.Run("missing secret exits 69", func(t *testing.T) {
		dir := t.TempDir()
		_, stderr, code := run(t, awsEnv(motoEnv), "run", "-c", writeFile(t, dir, "agentvault.yaml", bearer("aws:no/such-secret#token")),
			"--", "sh", "-c", "touch "+filepath.Join(dir, "ran"))
		if code != 69 {
			t.Errorf("exit %d, want 69", code)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if len(lines) != 1 || !strings.Contains(stderr, `"api"`) || !strings.Contains(stderr, "no/such-secret") {
			t.Errorf("stderr = %q, want one line naming credential \"api\" and the secret id", clip(stderr))
		}
		if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
			t.Error("the command ran although its credential could not be resolved")
		}
	})

	t.Run("sigv4 keys from Secrets Manager", func(t *testing.T) {
		up := newAWSUpstream(t, sigv4Keys)
		s := awsSession(t, up, sigv4Config(backends, "aws:awskeys", ""), motoEnv,
			awsStep("sts", fmt.Sprintf(`'%s' sts "$OUT/sts"`, awsClientBin))+
				awsStep("sm", fmt.Sprintf(`'%s' secret team/db "$OUT/sm"`, awsClientBin)))
		if s.code != 0 {
			t.Errorf("exit %d", s.code)
		}
		if s.stepOK(t, "sts") && s.clientJSON(t, "sts")["account"] != awsAccount {
			t.Errorf("GetCallerIdentity: %s", s.file("sts.json"))
		}
		if s.stepOK(t, "sm") && s.clientJSON(t, "sm")["secret_string"] != "upstream-value-for-team/db" {
			t.Errorf("GetSecretValue: %s", s.file("sm.json"))
		}
		up.verified(t, 2)
		assertAWSDummies(t, s, sigv4Keys, motoKeys.AccessKeyID, motoKeys.SecretAccessKey)
		s.assertNoSecret(t, append(awsKeysList{sigv4Keys, motoKeys}.values(), awsKeysJSON(sigv4Keys, true))...)
	})
}
