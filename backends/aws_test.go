package backends

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentvault/agentvault/internal/testsupport"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// isolateAWSEnv makes the SDK's default chain see only static test
// credentials, whatever the machine's environment and ~/.aws hold. The SDK
// reads the process environment, so this uses t.Setenv (no t.Parallel).
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                "testing",
		"AWS_SECRET_ACCESS_KEY":            "testing",
		"AWS_SESSION_TOKEN":                "",
		"AWS_PROFILE":                      "",
		"AWS_DEFAULT_PROFILE":              "",
		"AWS_REGION":                       "",
		"AWS_DEFAULT_REGION":               "",
		"AWS_CONFIG_FILE":                  filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE":      filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_ENDPOINT_URL":                 "",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": "",
		"AWS_CA_BUNDLE":                    "",
		"AWS_MAX_ATTEMPTS":                 "",
		"AWS_RETRY_MODE":                   "",
	} {
		t.Setenv(k, v)
	}
}

// startMoto runs a real moto_server on a loopback port for the test and
// returns its URL.
func startMoto(t *testing.T) string {
	t.Helper()
	bin := testsupport.MotoBinary()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("moto_server not found (set MOTO_SERVER); it is required in CI")
		}
		t.Skip("moto_server not found; set MOTO_SERVER to run the AWS Secrets Manager tests")
	}
	return testsupport.StartMoto(t, bin)
}

// motoAdmin is an SDK client that sets up secrets in moto.
func motoAdmin(t *testing.T, endpoint string) *secretsmanager.Client {
	t.Helper()
	return secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	})
}

func openAWSForTest(t *testing.T, doc string) Backend {
	t.Helper()
	b, err := Open(Options{Name: "aws", Type: "aws-secretsmanager", Decode: yamlDecode(t, doc), LookupEnv: os.LookupEnv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

func TestAWSSecretsManagerMoto(t *testing.T) {
	isolateAWSEnv(t)
	endpoint := startMoto(t)
	ctx := context.Background()
	admin := motoAdmin(t, endpoint)

	created, err := admin.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("app/db"),
		SecretString: aws.String(`{"user":"admin","password":"pw-old-1","port":5432,"id":12345678901234567890}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:     aws.String("app/db"),
		SecretString: aws.String(`{"user":"admin","password":"pw-new-2"}`),
	}); err != nil {
		t.Fatal(err)
	}
	binary := []byte{0x00, 0xff, 'k', '\n', 0x80}
	if _, err := admin.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("blob"), SecretBinary: binary}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("plain"), SecretString: aws.String("sk-plain-value")}); err != nil {
		t.Fatal(err)
	}
	values := []string{"pw-old-1", "pw-new-2", "sk-plain-value", "admin"}

	b := openAWSForTest(t, "region: us-east-1\nendpoint: "+endpoint)
	tests := []struct {
		ref, want, errHas string
	}{
		{ref: "plain", want: "sk-plain-value"},
		{ref: "app/db#password", want: "pw-new-2"},
		{ref: "app/db", want: `{"user":"admin","password":"pw-new-2"}`},
		{ref: "app/db?version_stage=AWSCURRENT#password", want: "pw-new-2"},
		{ref: "app/db?version_stage=AWSPREVIOUS#password", want: "pw-old-1"},
		{ref: "app/db?version_stage=AWSPREVIOUS#port", want: "5432"},
		{ref: "app/db?version_stage=AWSPREVIOUS#id", want: "12345678901234567890"},
		{ref: "app/db?version_id=" + *created.VersionId + "#password", want: "pw-old-1"},
		{ref: "blob", want: string(binary)},
		{ref: "blob#key", errHas: `secret "blob" is binary, so it has no JSON key "key"`},
		{ref: "nope", errHas: `secret "nope" not found in Secrets Manager (` + endpoint + `)`},
		{ref: "nope#password", errHas: `secret "nope" not found`},
		{ref: "app/db?version_stage=NOSUCHSTAGE", errHas: `secret "app/db" (stage NOSUCHSTAGE) not found`},
		{ref: "app/db#missing", errHas: `secret "app/db": field "missing" not found in the JSON object`},
		{ref: "app/db?version_stage=AWSPREVIOUS#missing", errHas: `secret "app/db" (stage AWSPREVIOUS): field "missing" not found`},
		{ref: "plain#password", errHas: `secret "plain": field "password" requested but the value is not a JSON object`},
		{ref: "app/db?stage=AWSPREVIOUS", errHas: `unknown query parameter "stage"`},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			s, err := b.Resolve(ctx, tt.ref)
			if tt.errHas != "" {
				if err == nil {
					t.Fatalf("Resolve(%q) = %q, want error containing %q", tt.ref, s.Value, tt.errHas)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error = %q, want it to contain %q", err, tt.errHas)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				for _, v := range values {
					if strings.Contains(err.Error(), v) {
						t.Errorf("error %q leaks a secret value", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Value != tt.want {
				t.Errorf("Resolve(%q) = %q, want %q", tt.ref, s.Value, tt.want)
			}
		})
	}
	if got := b.ConsumedEnv(); strings.Join(got, ",") != "AWS_ACCESS_KEY_ID,AWS_DEFAULT_PROFILE,AWS_PROFILE,AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN" {
		// isolateAWSEnv sets these (some empty): set is what counts.
		t.Errorf("ConsumedEnv() = %v", got)
	}
}

func TestAWSUnreachableEndpoint(t *testing.T) {
	isolateAWSEnv(t)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", testsupport.FreePort(t))
	b := openAWSForTest(t, "region: us-east-1\nendpoint: "+endpoint)
	_, err := b.Resolve(context.Background(), "app/db#password")
	if err == nil {
		t.Fatal("Resolve against a closed port succeeded")
	}
	want := `secret "app/db": cannot reach Secrets Manager at ` + endpoint + ": "
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error = %q, want prefix %q and the connection error", err, want)
	}
}

// fakeSecretsManager answers every call with one canned JSON 1.1 response,
// for the answers moto cannot give (it enforces no IAM policy, serves no TLS).
func fakeSecretsManager(status int, errType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
			http.Error(w, "unexpected target", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if errType != "" {
			w.Header().Set("X-Amzn-ErrorType", errType)
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

func TestAWSServiceErrors(t *testing.T) {
	isolateAWSEnv(t)
	tests := []struct {
		name, errType, body, want string
	}{
		{"access denied", "AccessDeniedException",
			`{"__type":"AccessDeniedException","Message":"User: arn:aws:iam::123456789012:user/agent is not authorized to perform: secretsmanager:GetSecretValue"}`,
			`access denied to secret "prod/stripe" (`},
		{"bad signature", "UnrecognizedClientException",
			`{"__type":"UnrecognizedClientException","message":"The security token included in the request is invalid."}`,
			`secret "prod/stripe": AWS rejected the credentials (UnrecognizedClientException): The security token included in the request is invalid.`},
		{"decryption", "DecryptionFailure",
			`{"__type":"DecryptionFailure","Message":"KMS key unusable"}`,
			`secret "prod/stripe": DecryptionFailure: KMS key unusable (`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(fakeSecretsManager(http.StatusBadRequest, tt.errType, tt.body))
			defer srv.Close()
			b := openAWSForTest(t, "region: eu-west-1\nendpoint: "+srv.URL)
			_, err := b.Resolve(context.Background(), "prod/stripe#api_key")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestAWSCAFile checks that ca_file adds a root for a private endpoint, and
// that without it the failure says so.
func TestAWSCAFile(t *testing.T) {
	isolateAWSEnv(t)
	srv := httptest.NewUnstartedServer(fakeSecretsManager(http.StatusOK, "",
		`{"ARN":"arn:aws:secretsmanager:eu-west-1:1:secret:x","Name":"x","SecretString":"tls-value","VersionId":"v1"}`))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(notPEM, []byte("nothing here"), 0o600)

	tests := []struct {
		name, doc, want, errHas string
	}{
		{"with ca_file", "ca_file: " + caFile, "tls-value", ""},
		{"without ca_file", "", "", "TLS verification of " + srv.URL + " failed"},
		{"missing ca_file", "ca_file: /nonexistent/ca.pem", "", `secret "x": ca_file: open /nonexistent/ca.pem`},
		{"not PEM", "ca_file: " + notPEM, "", "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := openAWSForTest(t, "region: eu-west-1\nendpoint: "+srv.URL+"\n"+tt.doc)
			s, err := b.Resolve(context.Background(), "x")
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Value != tt.want {
				t.Errorf("value = %q, want %q", s.Value, tt.want)
			}
		})
	}
}

func TestAWSNoRegion(t *testing.T) {
	isolateAWSEnv(t)
	b := openAWSForTest(t, "")
	_, err := b.Resolve(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), `secret "x": no AWS region`) {
		t.Fatalf("error = %v, want a missing region error", err)
	}
}

func TestAWSNoCredentials(t *testing.T) {
	isolateAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	srv := httptest.NewServer(fakeSecretsManager(http.StatusOK, "", `{"SecretString":"never"}`))
	defer srv.Close()
	b := openAWSForTest(t, "region: eu-west-1\nendpoint: "+srv.URL)
	_, err := b.Resolve(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), `secret "x": no usable AWS credentials`) {
		t.Fatalf("error = %v, want a missing credentials error", err)
	}
}

func TestAWSProfileNotFound(t *testing.T) {
	isolateAWSEnv(t)
	b := openAWSForTest(t, "region: eu-west-1\nprofile: agents")
	_, err := b.Resolve(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "agents") {
		t.Fatalf("error = %v, want one naming the missing profile", err)
	}
}

func TestParseAWSRef(t *testing.T) {
	tests := []struct {
		ref    string
		want   awsRef
		errHas string
	}{
		{ref: "prod/db", want: awsRef{id: "prod/db"}},
		{ref: "prod/db#password", want: awsRef{id: "prod/db", field: "password"}},
		{ref: "prod/db?version_stage=AWSPREVIOUS#password", want: awsRef{id: "prod/db", stage: "AWSPREVIOUS", field: "password"}},
		{ref: "prod/db?version_id=abc-123", want: awsRef{id: "prod/db", version: "abc-123"}},
		{ref: "prod/db?version_id=a&version_stage=AWSCURRENT", want: awsRef{id: "prod/db", version: "a", stage: "AWSCURRENT"}},
		{ref: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf#k",
			want: awsRef{id: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf", field: "k"}},
		{ref: "", errHas: "empty secret id"},
		{ref: "?version_stage=AWSPREVIOUS", errHas: "empty secret id"},
		{ref: "prod/db?version_stage=", errHas: "needs exactly one non-empty value"},
		{ref: "prod/db?version_stage=A&version_stage=B", errHas: "needs exactly one non-empty value"},
		{ref: "prod/db?versionStage=A", errHas: `unknown query parameter "versionStage"`},
		{ref: "prod/db?version_stage=%zz", errHas: "bad query"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := parseAWSRef(tt.ref)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("parseAWSRef(%q) error = %v, want %q", tt.ref, err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseAWSRef(%q) = %+v, want %+v", tt.ref, got, tt.want)
			}
		})
	}
}

func TestAWSConsumedEnv(t *testing.T) {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":           "AKIAEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":       "s",
		"AWS_PROFILE":                 "dev",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "/t",
		"AWS_REGION":                  "eu-west-1", // configuration, not a credential: stays
		"AWS_CONFIG_FILE":             "/c",        // likewise
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		doc, want string
	}{
		{"", "AWS_ACCESS_KEY_ID,AWS_PROFILE,AWS_SECRET_ACCESS_KEY,AWS_WEB_IDENTITY_TOKEN_FILE"},
		// A configured profile is what the chain uses; AWS_PROFILE stays the child's.
		{"profile: agents", "AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_WEB_IDENTITY_TOKEN_FILE"},
	}
	for _, tt := range tests {
		b, err := Open(Options{Name: "aws", Type: "aws-secretsmanager", Decode: yamlDecode(t, tt.doc), LookupEnv: lookup})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(b.ConsumedEnv(), ","); got != tt.want {
			t.Errorf("config %q: ConsumedEnv() = %s, want %s", tt.doc, got, tt.want)
		}
	}
}
