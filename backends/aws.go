package backends

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// awsResolveTimeout bounds one GetSecretValue, retries included: the SDK has
// no overall deadline, and an endpoint that swallows packets would otherwise
// hold agentvault before the command ever starts.
const awsResolveTimeout = 30 * time.Second

// awsConfig is the YAML of an aws-secretsmanager backend. Everything is
// optional: the SDK's usual chain (env, shared config, SSO, IMDS...) fills in.
type awsConfig struct {
	Region   string `yaml:"region"`
	Profile  string `yaml:"profile"`
	Endpoint string `yaml:"endpoint"`
	CAFile   string `yaml:"ca_file"`
}

// awsCredentialEnv are the variables through which the SDK's chain (or an
// older AWS tool) can take credentials. Whether or not the chain ended up
// using them, they hold credentials the child must not inherit.
var awsCredentialEnv = []string{
	"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY",
	"AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY",
	"AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
}

// awsProfileEnv select the profile only when the config names none; a
// configured profile wins and leaves them to the child.
var awsProfileEnv = []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE"}

// awsBackend reads AWS Secrets Manager: aws:SECRET_ID[?version_stage=S|?version_id=V][#key].
type awsBackend struct {
	typ      string
	name     string
	cfg      awsConfig
	consumed []string

	// The SDK config is loaded on first use, so that a broken profile or CA
	// file is reported as a resolution failure of the credential that needed
	// it; a failure is not cached, the next Resolve tries again.
	mu     sync.Mutex
	client *secretsmanager.Client
	where  string // "region X" or the endpoint, for error messages
}

func openAWS(o Options) (Backend, error) {
	var c awsConfig
	if err := o.Decode(&c); err != nil {
		return nil, err
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("backend %q: endpoint must be an http:// or https:// URL", o.Name)
		}
	}
	b := &awsBackend{typ: o.Type, name: o.Name, cfg: c}
	names := awsCredentialEnv
	if c.Profile == "" {
		names = append(append([]string{}, names...), awsProfileEnv...)
	}
	for _, n := range names {
		if _, ok := o.LookupEnv(n); ok {
			b.consumed = append(b.consumed, n)
		}
	}
	sort.Strings(b.consumed)
	return b, nil
}

func (b *awsBackend) Type() string { return b.typ }

func (b *awsBackend) ConsumedEnv() []string { return append([]string(nil), b.consumed...) }

func (b *awsBackend) Close(context.Context) error { return nil }

// clientFor returns the Secrets Manager client, loading the SDK config once.
func (b *awsBackend) clientFor(ctx context.Context) (*secretsmanager.Client, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client != nil {
		return b.client, b.where, nil
	}
	// The SDK's default logger writes warnings to stderr, which would break
	// the one-clear-line rule for agentvault's own output.
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if b.cfg.Region != "" {
		opts = append(opts, config.WithRegion(b.cfg.Region))
	}
	if b.cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(b.cfg.Profile))
	}
	if b.cfg.CAFile != "" {
		hc, err := httpClientWithCA(b.cfg.CAFile)
		if err != nil {
			return nil, "", err
		}
		opts = append(opts, config.WithHTTPClient(hc))
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// The SDK's messages name the profile or file at fault, never a key.
		return nil, "", fmt.Errorf("loading the AWS configuration: %v", err)
	}
	if ac.Region == "" {
		return nil, "", errors.New("no AWS region: set region: in the backend, AWS_REGION, or a profile's region")
	}
	where := "region " + ac.Region
	b.client = secretsmanager.NewFromConfig(ac, func(o *secretsmanager.Options) {
		if b.cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(b.cfg.Endpoint)
			where = b.cfg.Endpoint
		}
	})
	b.where = where
	return b.client, b.where, nil
}

// httpClientWithCA trusts the system roots plus caFile, the way
// --upstream-ca adds to the roots rather than replacing them.
func httpClientWithCA(caFile string) (*awshttp.BuildableClient, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = pool
	}), nil
}

// awsRef is a parsed reference.
type awsRef struct {
	id, stage, version, field string
}

// parseAWSRef splits SECRET_ID[?query][#field]. Secret names cannot contain
// '?' or '#', so the first '?' starts the query.
func parseAWSRef(ref string) (awsRef, error) {
	base, field := SplitField(ref)
	r := awsRef{field: field}
	id, query, hasQuery := strings.Cut(base, "?")
	r.id = id
	if r.id == "" {
		return r, fmt.Errorf("empty secret id in reference %q", ref)
	}
	if !hasQuery {
		return r, nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return r, fmt.Errorf("secret %q: bad query %q", r.id, query)
	}
	for k, vs := range q {
		if len(vs) != 1 || vs[0] == "" {
			return r, fmt.Errorf("secret %q: query parameter %s needs exactly one non-empty value", r.id, k)
		}
		switch k {
		case "version_stage":
			r.stage = vs[0]
		case "version_id":
			r.version = vs[0]
		default:
			return r, fmt.Errorf("secret %q: unknown query parameter %q (known: version_stage, version_id)", r.id, k)
		}
	}
	return r, nil
}

func (b *awsBackend) Resolve(ctx context.Context, ref string) (Secret, error) {
	r, err := parseAWSRef(ref)
	if err != nil {
		return Secret{}, err
	}
	client, where, err := b.clientFor(ctx)
	if err != nil {
		return Secret{}, fmt.Errorf("secret %q: %w", r.id, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, awsResolveTimeout)
		defer cancel()
	}
	// Credentials first: a chain that finds none fails deep inside the
	// operation with a message that reads like a network error (IMDS).
	if client.Options().Credentials == nil {
		return Secret{}, fmt.Errorf("secret %q: no AWS credentials found (environment, profile, SSO or instance role)", r.id)
	}
	if _, err := client.Options().Credentials.Retrieve(ctx); err != nil {
		return Secret{}, fmt.Errorf("secret %q: no usable AWS credentials: %s", r.id, oneLine(err.Error()))
	}
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(r.id)}
	if r.stage != "" {
		in.VersionStage = aws.String(r.stage)
	}
	if r.version != "" {
		in.VersionId = aws.String(r.version)
	}
	out, err := client.GetSecretValue(ctx, in)
	if err != nil {
		return Secret{}, describeAWSError(r, where, err)
	}
	var v string
	switch {
	case out.SecretString != nil:
		v = *out.SecretString
	case out.SecretBinary != nil:
		if r.field != "" {
			return Secret{}, fmt.Errorf("secret %q is binary, so it has no JSON key %q", r.id, r.field)
		}
		v = string(out.SecretBinary)
	}
	if v == "" {
		return Secret{}, fmt.Errorf("secret %q%s is empty", r.id, r.versionNote())
	}
	v, err = applyField(v, r.field)
	if err != nil {
		return Secret{}, fmt.Errorf("secret %q%s: %w", r.id, r.versionNote(), err)
	}
	return Secret{Value: v}, nil
}

// versionNote names the version asked for, for messages about a stage or id.
func (r awsRef) versionNote() string {
	switch {
	case r.version != "":
		return " (version " + r.version + ")"
	case r.stage != "":
		return " (stage " + r.stage + ")"
	}
	return ""
}

// describeAWSError turns an SDK error into one line. The SDK's own text
// stacks the operation, attempt count and request id; what a user needs is
// which secret, where, and the service's reason.
func describeAWSError(r awsRef, where string, err error) error {
	what := fmt.Sprintf("secret %q%s", r.id, r.versionNote())
	var api smithy.APIError
	if errors.As(err, &api) {
		msg := api.ErrorMessage()
		switch api.ErrorCode() {
		case "ResourceNotFoundException":
			return fmt.Errorf("%s not found in Secrets Manager (%s)", what, where)
		case "AccessDeniedException", "AccessDenied":
			return fmt.Errorf("access denied to %s (%s): %s", what, where, oneLine(msg))
		case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException":
			return fmt.Errorf("%s: AWS rejected the credentials (%s): %s", what, api.ErrorCode(), oneLine(msg))
		}
		if msg == "" {
			return fmt.Errorf("%s: %s (%s)", what, api.ErrorCode(), where)
		}
		return fmt.Errorf("%s: %s: %s (%s)", what, api.ErrorCode(), oneLine(msg), where)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: Secrets Manager at %s did not answer in time", what, where)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, context.Canceled)
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Errorf("%s: cannot reach Secrets Manager at %s: %v", what, where, dns)
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Errorf("%s: cannot reach Secrets Manager at %s: %v", what, where, op)
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return fmt.Errorf("%s: TLS verification of %s failed: %v (set ca_file?)", what, where, cv.Err)
	}
	return fmt.Errorf("%s (%s): %s", what, where, oneLine(err.Error()))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
