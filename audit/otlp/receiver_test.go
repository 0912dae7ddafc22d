package otlp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"
)

// proxyTrap counts connections to the address every proxy variable names
// for this test binary: the exporter must never use them.
var proxyTrap atomic.Int64

// TestMain points the proxy variables at a trap before anything reads them
// (net/http reads them once per process).
func TestMain(m *testing.M) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			proxyTrap.Add(1)
			c.Close()
		}
	}()
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		os.Setenv(k, "http://"+ln.Addr().String())
	}
	os.Unsetenv("NO_PROXY")
	os.Unsetenv("no_proxy")
	code := m.Run()
	ln.Close()
	os.Exit(code)
}

// receiver is a local OTLP/HTTP logs endpoint that decodes every request
// with the official protobuf types.
type receiver struct {
	*httptest.Server
	// answer, when set, replies to the n-th request (from 1) instead of
	// the default 200 with an empty ExportLogsServiceResponse; it returns
	// false to fall through to that default.
	answer func(w http.ResponseWriter, r *http.Request, n int) bool

	mu       sync.Mutex
	n        int
	requests []*collogspb.ExportLogsServiceRequest
	raw      [][]byte
	headers  []http.Header
	paths    []string
	arrived  chan struct{}
}

func newReceiver(t testing.TB, answer func(w http.ResponseWriter, r *http.Request, n int) bool) *receiver {
	t.Helper()
	rc := &receiver{answer: answer, arrived: make(chan struct{}, 1000)}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.n++
	n := rc.n
	rc.mu.Unlock()
	if rc.answer != nil && rc.answer(w, r, n) {
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a protobuf POST", http.StatusUnsupportedMediaType)
		return
	}
	var req collogspb.ExportLogsServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.requests = append(rc.requests, &req)
	rc.raw = append(rc.raw, body)
	rc.headers = append(rc.headers, r.Header.Clone())
	rc.paths = append(rc.paths, r.URL.Path)
	rc.mu.Unlock()
	out, _ := proto.Marshal(&collogspb.ExportLogsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
	rc.arrived <- struct{}{}
}

// records returns every log record received, in arrival order.
func (rc *receiver) records() []*logspb.LogRecord {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []*logspb.LogRecord
	for _, req := range rc.requests {
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				out = append(out, sl.GetLogRecords()...)
			}
		}
	}
	return out
}

// batchSizes returns the record count of each request received.
func (rc *receiver) batchSizes() []int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []int
	for _, req := range rc.requests {
		n := 0
		for _, rl := range req.GetResourceLogs() {
			for _, sl := range rl.GetScopeLogs() {
				n += len(sl.GetLogRecords())
			}
		}
		out = append(out, n)
	}
	return out
}

// waitBatches waits (bounded) until n requests were decoded.
func (rc *receiver) waitBatches(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-rc.arrived:
		case <-deadline:
			t.Fatalf("received %d export requests, want %d", len(rc.batchSizes()), n)
		}
	}
}

// attrs flattens a key-value list for comparison.
func attrs(kvs []*commonpb.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = v.IntValue
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = v.DoubleValue
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = v.BoolValue
		default:
			m[kv.GetKey()] = fmt.Sprintf("unexpected %T", v)
		}
	}
	return m
}

// shutdown flushes with a deadline, as the session does at exit.
func shutdown(e *Exporter, d time.Duration) Result {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return e.Shutdown(ctx)
}
