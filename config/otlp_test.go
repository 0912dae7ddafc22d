package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseOTLP(t *testing.T) {
	cfg, err := Parse("a.yaml", []byte(`audit:
  log: ./audit.jsonl
  otlp:
    endpoint: https://otel.example.com:4318
    headers:
      Authorization: Bearer ${OTEL_TOKEN}
      X-Scope-OrgID: team-a
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &OTLP{Endpoint: "https://otel.example.com:4318", Headers: map[string]string{
		"Authorization": "Bearer ${OTEL_TOKEN}", "X-Scope-OrgID": "team-a",
	}}
	if !reflect.DeepEqual(cfg.Audit.OTLP, want) {
		t.Fatalf("audit.otlp = %+v, want %+v", cfg.Audit.OTLP, want)
	}
	cfg, err = Parse("a.yaml", []byte("audit:\n  otlp:\n"))
	if err != nil || cfg.Audit.OTLP != nil {
		t.Fatalf("an empty audit.otlp: %+v, %v", cfg.Audit.OTLP, err)
	}
}

// TestParseOTLPErrors: every bad value is refused with its position, and a
// header value (which may be a token) is never repeated.
func TestParseOTLPErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no endpoint", "audit:\n  otlp:\n    headers: {A: b}\n", `a.yaml:3:5: audit.otlp: endpoint is required`},
		{"not a mapping", "audit:\n  otlp: http://x:4318\n", `a.yaml:2:9: audit.otlp: expected a mapping, got a string`},
		{"unknown key", "audit:\n  otlp:\n    url: http://x\n", `a.yaml:3:5: audit.otlp: unknown key "url" (known: endpoint, headers)`},
		{"no scheme", "audit:\n  otlp:\n    endpoint: localhost:4318\n", `a.yaml:3:15: audit.otlp.endpoint: has no scheme; want an http:// or https:// URL`},
		{"grpc", "audit:\n  otlp:\n    endpoint: grpc://c:4317\n", `a.yaml:3:15: audit.otlp.endpoint: scheme "grpc" is not supported`},
		{"no host", "audit:\n  otlp:\n    endpoint: 'http://:4318'\n", `a.yaml:3:15: audit.otlp.endpoint: has no host`},
		{"userinfo", "audit:\n  otlp:\n    endpoint: http://u:hunter2@c:4318\n", `a.yaml:3:15: audit.otlp.endpoint: has a user name or password; put credentials in audit.otlp.headers`},
		{"bad port", "audit:\n  otlp:\n    endpoint: http://c:99999\n", `a.yaml:3:15: audit.otlp.endpoint: port "99999" is not a port number`},
		{"not a URL", "audit:\n  otlp:\n    endpoint: 'http://c:4318/%zz'\n", `a.yaml:3:15: audit.otlp.endpoint: not a URL`},
		{"fragment", "audit:\n  otlp:\n    endpoint: 'http://c/#x'\n", `a.yaml:3:15: audit.otlp.endpoint: has a #fragment`},
		{"number endpoint", "audit:\n  otlp:\n    endpoint: [a]\n", `a.yaml:3:15: audit.otlp.endpoint: expected a string, got a list`},
		{"headers not a mapping", "audit:\n  otlp:\n    endpoint: http://c\n    headers: [a]\n", `a.yaml:4:14: audit.otlp.headers: expected a mapping`},
		{"header name", "audit:\n  otlp:\n    endpoint: http://c\n    headers: {'Bad Name': hunter2}\n", `a.yaml:4:15: audit.otlp.headers: "Bad Name" is not a valid HTTP header name`},
		{"own header", "audit:\n  otlp:\n    endpoint: http://c\n    headers: {content-type: text/plain}\n", `audit.otlp.headers: "content-type" is set by agentvault itself`},
		{"control character", "audit:\n  otlp:\n    endpoint: http://c\n    headers: {X-Key: \"hunter2\\r\\nX: y\"}\n", `audit.otlp.headers: X-Key: the value has a control character`},
		{"unclosed ${", "audit:\n  otlp:\n    endpoint: http://c\n    headers: {X-Key: 'hunter2 ${TOKEN'}\n", `audit.otlp.headers: X-Key: ${ without a closing }`},
		{"bad variable name", "audit:\n  otlp:\n    endpoint: http://c\n    headers: {X-Key: '${hunter2 x}'}\n", `audit.otlp.headers: X-Key: ${...} must hold an environment variable name`},
		{"header value a list", "audit:\n  otlp:\n    endpoint: http://c\n    headers: {X-Key: [hunter2]}\n", `audit.otlp.headers.X-Key: expected a string, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("a.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant one containing %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error repeats a value: %v", err)
			}
		})
	}
}

func TestOTLPHeaderValues(t *testing.T) {
	env := map[string]string{"OTEL_TOKEN": "tok-123", "ORG": "team-a", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		headers map[string]string
		want    map[string]string
		vars    []string
		err     string
	}{
		{
			headers: map[string]string{"Authorization": "Bearer ${OTEL_TOKEN}", "X-Org": "${ORG}/${ORG}", "X-Plain": "cost $5 x"},
			want:    map[string]string{"Authorization": "Bearer tok-123", "X-Org": "team-a/team-a", "X-Plain": "cost $5 x"},
			vars:    []string{"ORG", "OTEL_TOKEN"},
		},
		{headers: map[string]string{"X-Plain": "a $HOME b"}, want: map[string]string{"X-Plain": "a $HOME b"}, vars: nil},
		{headers: map[string]string{"Authorization": "Bearer ${MISSING}"}, err: "audit.otlp.headers.Authorization: environment variable MISSING is not set"},
		{headers: map[string]string{"Authorization": "Bearer ${EMPTY}"}, err: "environment variable EMPTY is not set"},
	}
	for _, tt := range tests {
		got, vars, err := (&OTLP{Headers: tt.headers}).HeaderValues(lookup)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("HeaderValues(%v) error %v, want %q", tt.headers, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(vars, tt.vars) {
			t.Errorf("HeaderValues(%v) = %v, %v, %v; want %v, %v", tt.headers, got, vars, err, tt.want, tt.vars)
		}
	}
}

func TestOTLPHeadersInClear(t *testing.T) {
	for _, tt := range []struct {
		endpoint string
		headers  map[string]string
		want     bool
	}{
		{"http://127.0.0.1:4318", map[string]string{"Authorization": "Bearer x"}, true},
		{"HTTP://collector.internal:4318/v1/logs", map[string]string{"X-Key": "${K}"}, true},
		{"http://127.0.0.1:4318", nil, false},
		{"https://127.0.0.1:4318", map[string]string{"Authorization": "Bearer x"}, false},
	} {
		if got := (&OTLP{Endpoint: tt.endpoint, Headers: tt.headers}).HeadersInClear(); got != tt.want {
			t.Errorf("%s with %d headers: HeadersInClear = %v, want %v", tt.endpoint, len(tt.headers), got, tt.want)
		}
	}
}
