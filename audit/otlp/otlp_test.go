package otlp

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/agentvault/agentvault/proxy"
)

var t0 = time.Date(2026, 12, 4, 14, 3, 7, 123456000, time.UTC)

func TestRecordAttributes(t *testing.T) {
	tests := []struct {
		name     string
		rec      proxy.Record
		want     map[string]any
		severity logspb.SeverityNumber
		body     string
	}{
		{
			name: "inject with every field",
			rec: proxy.Record{Time: t0, Action: proxy.ActionInject, Method: "POST", Scheme: "https", Host: "api.anthropic.com", Port: 443,
				Path: "/v1/messages", Credential: "anthropic", Status: 200, ReqBytes: 5123, RespBytes: 20480,
				Duration: 812400 * time.Microsecond, Retried: true, Redacted: true, Warning: `credential "anthropic" re-resolved after 401`},
			want: map[string]any{
				"session.id": "av-7f3a2c9e", "agentvault.action": "inject", "server.address": "api.anthropic.com", "server.port": int64(443),
				"agentvault.credential": "anthropic", "http.response.status_code": int64(200), "http.request.method": "POST",
				"url.scheme": "https", "url.path": "/v1/messages", "http.request.body.size": int64(5123), "http.response.body.size": int64(20480),
				"agentvault.duration_ms": 812.4, "agentvault.retried": true, "agentvault.redacted": true,
				"agentvault.warning": `credential "anthropic" re-resolved after 401`,
			},
			severity: logspb.SeverityNumber_SEVERITY_NUMBER_WARN,
			body:     "inject POST https://api.anthropic.com:443/v1/messages 200",
		},
		{
			name: "deny carries what is known",
			rec:  proxy.Record{Time: t0, Action: proxy.ActionDeny, Method: "CONNECT", Host: "evil.example", Port: 443, Status: 403, RespBytes: 60, Warning: "egress: default deny"},
			want: map[string]any{
				"session.id": "av-7f3a2c9e", "agentvault.action": "deny", "server.address": "evil.example", "server.port": int64(443),
				"http.response.status_code": int64(403), "http.request.method": "CONNECT", "http.response.body.size": int64(60),
				"agentvault.warning": "egress: default deny",
			},
			severity: logspb.SeverityNumber_SEVERITY_NUMBER_WARN,
			body:     "deny CONNECT evil.example:443 403",
		},
		{
			name: "pass without credential",
			rec:  proxy.Record{Time: t0, Action: proxy.ActionPass, Method: "GET", Scheme: "http", Host: "plain.example", Port: 80, Path: "/", Status: 204, Duration: time.Millisecond},
			want: map[string]any{
				"session.id": "av-7f3a2c9e", "agentvault.action": "pass", "server.address": "plain.example", "server.port": int64(80),
				"http.response.status_code": int64(204), "http.request.method": "GET", "url.scheme": "http", "url.path": "/",
				"agentvault.duration_ms": 1.0,
			},
			severity: logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
			body:     "pass GET http://plain.example:80/ 204",
		},
		{
			name: "error with no status",
			rec:  proxy.Record{Time: t0, Action: proxy.ActionError, Method: "GET", Scheme: "https", Host: "down.example", Port: 8443, Path: "/x", Credential: "demo", Error: "upstream down.example: connection refused"},
			want: map[string]any{
				"session.id": "av-7f3a2c9e", "agentvault.action": "error", "server.address": "down.example", "server.port": int64(8443),
				"agentvault.credential": "demo", "http.request.method": "GET", "url.scheme": "https", "url.path": "/x",
				"agentvault.error": "upstream down.example: connection refused",
			},
			severity: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR,
			body:     "error GET https://down.example:8443/x",
		},
		{
			name: "invalid UTF-8 in a decoded path is replaced, not a lost batch",
			rec:  proxy.Record{Time: t0, Action: proxy.ActionPass, Method: "GET", Scheme: "http", Host: "h.example", Port: 80, Path: "/a\xffb", Status: 200},
			want: map[string]any{
				"session.id": "av-7f3a2c9e", "agentvault.action": "pass", "server.address": "h.example", "server.port": int64(80),
				"http.response.status_code": int64(200), "http.request.method": "GET", "url.scheme": "http", "url.path": "/a\uFFFDb",
			},
			severity: logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
			body:     "pass GET http://h.example:80/a\uFFFDb 200",
		},
	}
	rc := newReceiver(t, nil)
	e, err := New(Config{Endpoint: rc.URL, Session: "av-7f3a2c9e", Hostname: "ci-runner-7", Version: "1.2.3",
		Headers: map[string]string{"Authorization": "Bearer collector-token", "X-Scope-OrgID": "team-a"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		e.Add(tt.rec)
	}
	res := shutdown(e, 5*time.Second)
	if w := res.Warning(); w != "" || res.Delivered != int64(len(tests)) {
		t.Fatalf("delivered %d of %d, warning %q", res.Delivered, len(tests), w)
	}
	got := rc.records()
	if len(got) != len(tests) {
		t.Fatalf("collector got %d records, want %d", len(got), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := got[i]
			if a := attrs(lr.GetAttributes()); !reflect.DeepEqual(a, tt.want) {
				t.Errorf("attributes\n got %v\nwant %v", a, tt.want)
			}
			if lr.GetSeverityNumber() != tt.severity {
				t.Errorf("severity %v, want %v", lr.GetSeverityNumber(), tt.severity)
			}
			if b := lr.GetBody().GetStringValue(); b != tt.body {
				t.Errorf("body %q, want %q", b, tt.body)
			}
			if lr.GetTimeUnixNano() != uint64(t0.UnixNano()) || lr.GetObservedTimeUnixNano() == 0 {
				t.Errorf("time %d (observed %d), want %d", lr.GetTimeUnixNano(), lr.GetObservedTimeUnixNano(), t0.UnixNano())
			}
			if lr.GetEventName() != "agentvault.audit" {
				t.Errorf("event name %q", lr.GetEventName())
			}
		})
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.paths[0] != "/v1/logs" {
		t.Errorf("posted to %q, want /v1/logs", rc.paths[0])
	}
	h := rc.headers[0]
	if h.Get("Authorization") != "Bearer collector-token" || h.Get("X-Scope-OrgID") != "team-a" {
		t.Errorf("configured headers not sent: %v", h)
	}
	rl := rc.requests[0].GetResourceLogs()[0]
	wantRes := map[string]any{"service.name": "agentvault", "service.version": "1.2.3", "host.name": "ci-runner-7"}
	if a := attrs(rl.GetResource().GetAttributes()); !reflect.DeepEqual(a, wantRes) {
		t.Errorf("resource %v, want %v", a, wantRes)
	}
	if s := rl.GetScopeLogs()[0].GetScope().GetName(); s != "agentvault.audit" {
		t.Errorf("scope %q", s)
	}
}

func TestResolveEndpoint(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "http://127.0.0.1:4318", want: "http://127.0.0.1:4318/v1/logs"},
		{in: "http://collector:4318/", want: "http://collector:4318/v1/logs"},
		{in: "https://otel.example.com/v1/logs", want: "https://otel.example.com/v1/logs"},
		{in: "https://gw.example.com/otlp/v1/logs?tenant=a", want: "https://gw.example.com/otlp/v1/logs?tenant=a"},
		{in: "https://[::1]:4318", want: "https://[::1]:4318/v1/logs"},
		{in: "", err: "empty"},
		{in: "localhost:4318", err: "no scheme"},
		{in: "collector.example:4318/v1/logs", err: "no scheme"},
		{in: "grpc://collector:4317", err: `scheme "grpc"`},
		{in: "http://", err: "no host"},
		{in: "http://:4318", err: "no host"},
		{in: "http://user:hunter2@collector:4318", err: "headers"},
		{in: "http://collector:99999", err: "not a port"},
		{in: "http://collector:4318/#x", err: "fragment"},
		{in: "http://collector:port", err: "not a URL"},
		{in: "http://coll ector", err: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := ResolveEndpoint(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error repeats the password: %v", err)
				}
				return
			}
			if err != nil || u.String() != tt.want {
				t.Fatalf("got %v, %v; want %s", u, err, tt.want)
			}
		})
	}
}

func TestCheckHeaders(t *testing.T) {
	tests := []struct {
		h   map[string]string
		err string
	}{
		{h: map[string]string{"Authorization": "Basic abc=", "x-api-key": "k\tv"}},
		{h: map[string]string{"Bad Name": "v"}, err: "not a valid"},
		{h: map[string]string{"": "v"}, err: "not a valid"},
		{h: map[string]string{"X-Key": "sec\r\nX-Evil: 1"}, err: "control character"},
		{h: map[string]string{"content-type": "application/json"}, err: "set by the exporter"},
	}
	for _, tt := range tests {
		err := CheckHeaders(tt.h)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("CheckHeaders(%q) = %v, want %q", tt.h, err, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), "sec") {
			t.Errorf("error repeats a header value: %v", err)
		}
	}
}

func TestBatchBySize(t *testing.T) {
	rc := newReceiver(t, nil)
	e, err := New(Config{Endpoint: rc.URL, Session: "s", BatchSize: 10, BatchDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 25; i++ {
		e.Add(proxy.Record{Action: proxy.ActionPass, Host: "h.example", Port: 443})
	}
	// Two full batches go out on their own; the hour-long delay shows
	// they did not wait for time or for Shutdown.
	rc.waitBatches(t, 2)
	res := shutdown(e, 5*time.Second)
	if got := rc.batchSizes(); !reflect.DeepEqual(got, []int{10, 10, 5}) {
		t.Fatalf("batches %v, want [10 10 5]", got)
	}
	if res.Delivered != 25 || res.Warning() != "" {
		t.Fatalf("result %+v", res)
	}
}

func TestBatchByTime(t *testing.T) {
	rc := newReceiver(t, nil)
	e, err := New(Config{Endpoint: rc.URL, Session: "s", BatchSize: 1000, BatchDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(e, time.Second)
	for i := 0; i < 3; i++ {
		e.Add(proxy.Record{Action: proxy.ActionPass, Host: "h.example", Port: 443})
	}
	rc.waitBatches(t, 1) // before Shutdown: the delay alone sent it
	if got := rc.batchSizes(); !reflect.DeepEqual(got, []int{3}) {
		t.Fatalf("batches %v, want [3]", got)
	}
}

// TestCollectorFailures: whatever the collector does, Add never blocks,
// Shutdown returns by its deadline, and the loss is one line of counts and
// a reason that holds no header value.
func TestCollectorFailures(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	dead := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	tests := []struct {
		name     string
		endpoint func() string
		reason   string
	}{
		{name: "dead", endpoint: dead, reason: "connection refused"},
		{name: "slow", endpoint: func() string {
			return newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) bool {
				select {
				case <-hang:
				case <-r.Context().Done(): // the exporter gave up
				}
				return true
			}).URL
		}},
		{name: "500", endpoint: func() string {
			return newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) bool { w.WriteHeader(500); return true }).URL
		}, reason: "500 Internal Server Error"},
		{name: "401 not retried", endpoint: func() string {
			return newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) bool { w.WriteHeader(401); return true }).URL
		}, reason: "401 Unauthorized"},
		{name: "redirect not followed", endpoint: func() string {
			other := newReceiver(t, nil)
			return newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) bool {
				w.Header().Set("Location", other.URL+"/v1/logs")
				w.WriteHeader(http.StatusTemporaryRedirect)
				return true
			}).URL
		}, reason: "redirects are not followed"},
		{name: "404 on a custom path", endpoint: func() string {
			return newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) bool { w.WriteHeader(404); return true }).URL + "/otlp"
		}, reason: "need /v1/logs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(Config{Endpoint: tt.endpoint(), Session: "s", BatchSize: 4, BatchDelay: time.Millisecond,
				RetryFor: 100 * time.Millisecond, Timeout: time.Second,
				Headers: map[string]string{"Authorization": "Bearer s3cr3t-collector-token"}})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 10; i++ {
				e.Add(proxy.Record{Action: proxy.ActionInject, Host: "api.example", Port: 443, Credential: "demo"})
			}
			start := time.Now()
			res := shutdown(e, 300*time.Millisecond)
			// A hang detector, not a timing target: the bound is the
			// deadline plus the 100 ms grace, with room for a slow machine.
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Shutdown took %s with a 300ms deadline", d)
			}
			w := res.Warning()
			t.Log(w)
			if res.Delivered != 0 || res.NotDelivered() != 10 || res.Dropped+res.Failed+res.Unsent != 10 {
				t.Fatalf("result %+v", res)
			}
			if !strings.HasPrefix(w, "audit.otlp: 10 of 10 audit records not delivered to http://127.0.0.1:") || strings.Contains(w, "\n") {
				t.Fatalf("warning %q", w)
			}
			if !strings.Contains(w, tt.reason) {
				t.Fatalf("warning %q lacks %q", w, tt.reason)
			}
			if strings.Contains(w, "s3cr3t") {
				t.Fatalf("warning holds a header value: %q", w)
			}
		})
	}
}

func TestRetryThenDeliver(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request, n int) bool
	}{
		{name: "503 twice", answer: func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n <= 2 {
				w.WriteHeader(503)
				return true
			}
			return false
		}},
		{name: "429 with Retry-After", answer: func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n <= 2 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(429)
				return true
			}
			return false
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, tt.answer)
			e, err := New(Config{Endpoint: rc.URL, Session: "s", BatchSize: 5, BatchDelay: time.Hour, RetryFor: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				e.Add(proxy.Record{Action: proxy.ActionPass, Host: "h.example", Port: 443})
			}
			rc.waitBatches(t, 1)
			res := shutdown(e, 5*time.Second)
			if res.Delivered != 5 || res.Attempts != 3 || res.Warning() != "" {
				t.Fatalf("result %+v, warning %q", res, res.Warning())
			}
		})
	}
}

func TestPartialSuccess(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) bool {
		out, _ := proto.Marshal(&collogspb.ExportLogsServiceResponse{PartialSuccess: &collogspb.ExportLogsPartialSuccess{
			RejectedLogRecords: 2, ErrorMessage: "too\nold",
		}})
		w.Write(out)
		return true
	})
	e, err := New(Config{Endpoint: rc.URL, Session: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		e.Add(proxy.Record{Action: proxy.ActionPass, Host: "h.example", Port: 443})
	}
	res := shutdown(e, 5*time.Second)
	if res.Delivered != 3 || res.Failed != 2 || !strings.Contains(res.Warning(), "collector rejected 2 records: too old") {
		t.Fatalf("result %+v, warning %q", res, res.Warning())
	}
}

// TestQueueOverflow: with the collector stuck, the queue fills, Add keeps
// returning at once and counts what it drops; what was queued still goes
// out once the collector answers.
func TestQueueOverflow(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	e, err := New(Config{Endpoint: rc.URL, Session: "s", BatchSize: 1, QueueSize: 4, BatchDelay: time.Millisecond, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				e.Add(proxy.Record{Action: proxy.ActionPass, Host: "h.example", Port: 443})
			}
		}()
	}
	wg.Wait()
	free()
	res := shutdown(e, 10*time.Second)
	// At most one batch in flight plus a full queue were kept.
	if res.Offered != 100 || res.Dropped < 95 || res.Dropped+res.Delivered != 100 {
		t.Fatalf("result %+v", res)
	}
	if w := res.Warning(); !strings.Contains(w, " dropped (queue full)") {
		t.Fatalf("warning %q", w)
	}
}

// TestDirect: the exporter's requests go straight to the collector even
// when the environment names a proxy (TestMain points every proxy variable
// at a trap) and the collector is not on a loopback address net/http would
// exempt anyway.
func TestDirect(t *testing.T) {
	rc := newReceiver(t, nil)
	var dialed []string
	var mu sync.Mutex
	cfg := Config{Endpoint: "http://collector.example.test:4318", Session: "s"}
	cfg.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, rc.Listener.Addr().String())
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Add(proxy.Record{Action: proxy.ActionPass, Host: "h.example", Port: 443})
	res := shutdown(e, 5*time.Second)
	if res.Delivered != 1 {
		t.Fatalf("result %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(dialed, []string{"collector.example.test:4318"}) || proxyTrap.Load() != 0 {
		t.Fatalf("dialed %v, proxy trap hit %d times", dialed, proxyTrap.Load())
	}
}

func TestHTTPSRoots(t *testing.T) {
	var got [][]byte
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		mu.Lock()
		got = append(got, b.Bytes())
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tests := []struct {
		name      string
		roots     *x509.CertPool
		delivered int64
		reason    string
	}{
		{name: "configured roots", roots: pool, delivered: 1},
		{name: "system roots do not know the test CA", roots: nil, reason: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(Config{Endpoint: srv.URL, Session: "s", RootCAs: tt.roots, RetryFor: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			e.Add(proxy.Record{Action: proxy.ActionPass, Host: "h.example", Port: 443})
			res := shutdown(e, 5*time.Second)
			if res.Delivered != tt.delivered || !strings.Contains(res.Warning(), tt.reason) {
				t.Fatalf("result %+v, warning %q", res, res.Warning())
			}
		})
	}
}

func TestLongFieldsBounded(t *testing.T) {
	rc := newReceiver(t, nil)
	e, err := New(Config{Endpoint: rc.URL, Session: "s"})
	if err != nil {
		t.Fatal(err)
	}
	long := "/" + strings.Repeat("é", 100_000)
	e.Add(proxy.Record{Action: proxy.ActionPass, Host: "h.example", Port: 443, Path: long})
	shutdown(e, 5*time.Second)
	recs := rc.records()
	if len(recs) != 1 {
		t.Fatalf("got %d records", len(recs))
	}
	p, _ := attrs(recs[0].GetAttributes())["url.path"].(string)
	if len(p) > maxField+len("…") || !strings.HasPrefix(long, strings.TrimSuffix(p, "…")) {
		t.Fatalf("path of %d bytes, want a prefix of at most %d", len(p), maxField)
	}
}

func TestNilExporter(t *testing.T) {
	var e *Exporter
	e.Add(proxy.Record{})
	if res := e.Shutdown(context.Background()); res.Warning() != "" {
		t.Fatalf("nil exporter result %+v", res)
	}
}

func TestAddAfterShutdown(t *testing.T) {
	rc := newReceiver(t, nil)
	e, err := New(Config{Endpoint: rc.URL, Session: "s"})
	if err != nil {
		t.Fatal(err)
	}
	e.Add(proxy.Record{Action: proxy.ActionPass, Host: "h.example", Port: 443})
	shutdown(e, 5*time.Second)
	e.Add(proxy.Record{Action: proxy.ActionPass, Host: "h.example", Port: 443})
	res := e.Shutdown(context.Background())
	// Shutdown's Result is computed once; a later call returns it as it was.
	if res.Delivered != 1 || res.Late != 0 {
		t.Fatalf("second Shutdown: %+v", res)
	}
	if got := e.late.Load(); got != 1 {
		t.Fatalf("late records %d, want 1", got)
	}
}
