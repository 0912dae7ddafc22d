// Package otlp ships audit records to an OpenTelemetry collector as OTLP/HTTP
// protobuf log records, so a team's collector sees every agent's activity.
//
// The exporter is a side channel next to the local JSONL audit log, never a
// replacement: Add never blocks (a full queue drops the record and counts
// it), exports run on one goroutine of their own, and Shutdown gives up after
// its deadline. Whatever was not delivered comes back as counts and one
// reason in Result, for a single warning line in the session summary.
//
// Records reach Add already redacted by the proxy (proxy.Proxy.emit masks
// host, path, warning and error). The exporter adds no text of its own that
// could hold a secret: its warning names the endpoint without userinfo or
// query and never a header value.
package otlp

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/agentvault/agentvault/proxy"
	"github.com/agentvault/agentvault/vocab"
)

// Defaults for the zero values of Config's tuning fields.
const (
	DefaultBatchSize  = 256
	DefaultBatchDelay = time.Second
	DefaultQueueSize  = 2048
	DefaultRetryFor   = 15 * time.Second
	DefaultTimeout    = 5 * time.Second
)

// Config describes one session's exporter.
type Config struct {
	// Endpoint is the collector's URL; see ResolveEndpoint.
	Endpoint string
	// Headers go on every export request (typically authentication).
	Headers map[string]string
	// Session is the session id, an attribute of every record.
	Session string
	// Hostname is the resource's host.name; "" = os.Hostname().
	Hostname string
	// Version is the resource's service.version; "" leaves it out.
	Version string
	// RootCAs verifies an https collector; nil = the system roots.
	RootCAs *x509.CertPool

	BatchSize  int           // records per export request
	BatchDelay time.Duration // longest a record waits for its batch to fill
	QueueSize  int           // records waiting while a batch is exported
	RetryFor   time.Duration // how long one batch is retried (429, 5xx, network errors)
	Timeout    time.Duration // one export attempt

	// dial replaces the network dialer (tests map host names with it).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Exporter batches records and posts them to the collector. The zero value
// is not usable; a nil *Exporter discards records, so a session without
// audit.otlp needs no special case.
type Exporter struct {
	cfg      Config
	url      string // where requests go
	display  string // the endpoint as warnings may show it
	client   *http.Client
	resource resourceAttrs

	queue   chan proxy.Record
	closing chan struct{}
	done    chan struct{}
	ctx     context.Context // cancelled when Shutdown's deadline passes
	cancel  context.CancelFunc

	closed    atomic.Bool
	offered   atomic.Int64
	delivered atomic.Int64
	dropped   atomic.Int64
	late      atomic.Int64
	failed    atomic.Int64
	attempts  atomic.Int64

	shutdownOnce sync.Once
	mu           sync.Mutex
	lastErr      string // why the latest export attempt failed
	result       Result
}

// Result says what became of the records given to Add.
type Result struct {
	Endpoint  string        // as Warning shows it: no userinfo, no query
	Offered   int64         // records given to Add
	Delivered int64         // accepted by the collector
	Dropped   int64         // refused by a full queue
	Late      int64         // given to Add after Shutdown began
	Failed    int64         // given up: retries exhausted, a non-retryable answer, rejected by the collector
	Unsent    int64         // still queued or in flight when Shutdown's deadline passed
	Attempts  int64         // export requests sent
	LastError string        // why the latest failed attempt failed; never holds a header value
	Flush     time.Duration // how long Shutdown took
}

// New checks cfg and starts the exporter's goroutine. Call Shutdown to stop it.
func New(cfg Config) (*Exporter, error) {
	u, err := ResolveEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if err := CheckHeaders(cfg.Headers); err != nil {
		return nil, err
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchDelay <= 0 {
		cfg.BatchDelay = DefaultBatchDelay
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Exporter{
		cfg:      cfg,
		url:      u.String(),
		display:  displayURL(u),
		client:   newClient(cfg),
		resource: resourceAttrs{hostname: cfg.Hostname, version: cfg.Version},
		queue:    make(chan proxy.Record, cfg.QueueSize),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
	go e.run()
	return e, nil
}

// newClient builds the exporter's own HTTP client. Its traffic is
// agentvault's, not the agent's: it goes straight to the collector, never
// through the session proxy nor a proxy named by the environment (whose
// HTTPS_PROXY may be the very proxy of an enclosing session), and redirects
// are not followed so the headers never reach another host.
func newClient(cfg Config) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: cfg.Timeout,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        2,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	if cfg.dial != nil {
		tr.DialContext = cfg.dial
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ResolveEndpoint checks a configured endpoint and returns the URL export
// requests are posted to: an endpoint without a path (or with "/") gets
// /v1/logs, the OTLP/HTTP logs path; one with a path is used as written.
// Credentials belong in headers, so userinfo is refused.
func ResolveEndpoint(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("endpoint is empty; want an http:// or https:// URL such as http://localhost:4318")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("endpoint is not a URL: %v", unwrapURLError(err))
	}
	if !strings.Contains(raw, "://") {
		u.Scheme = ""
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return nil, errors.New("endpoint has no scheme; want http:// or https:// (for example http://localhost:4318)")
	default:
		return nil, fmt.Errorf("endpoint scheme %q is not supported; want http or https (OTLP/HTTP)", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("endpoint has no host")
	}
	if u.User != nil {
		return nil, errors.New("endpoint has a user name or password; put credentials in audit.otlp.headers instead")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, errors.New("endpoint has a #fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("endpoint port %q is not a port number", p)
		}
	}
	if u.Path == "" || u.Path == "/" {
		u.Path, u.RawPath = "/v1/logs", ""
	}
	return u, nil
}

// displayURL is the endpoint without its query: an ingest key is sometimes
// passed there, and warnings end up in CI logs.
func displayURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.User = "", false, nil
	return c.String()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// CheckHeaders refuses header names that are not HTTP tokens and values with
// control characters. The error names the header, never its value.
func CheckHeaders(h map[string]string) error {
	for name, v := range h {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("header name %q is not a valid HTTP header name", name)
		}
		if vocab.ExporterHeader(name) {
			return fmt.Errorf("header %q is set by the exporter itself", name)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			return fmt.Errorf("header %q: value has a control character", name)
		}
	}
	return nil
}

// Add queues one record for export. It never blocks: when the queue is full
// (a slow or dead collector), or once Shutdown has begun, the record is
// dropped and counted. Safe for concurrent use.
func (e *Exporter) Add(r proxy.Record) {
	if e == nil {
		return
	}
	e.offered.Add(1)
	if e.closed.Load() {
		e.late.Add(1)
		return
	}
	select {
	case e.queue <- bound(r):
	default:
		e.dropped.Add(1)
	}
}

// Shutdown exports what is queued and stops. It returns by ctx's deadline
// whatever the collector does: in-flight requests and retries are then
// abandoned and their records counted as Unsent. Later calls return the
// same Result.
func (e *Exporter) Shutdown(ctx context.Context) Result {
	if e == nil {
		return Result{}
	}
	e.shutdownOnce.Do(func() {
		start := time.Now()
		e.closed.Store(true)
		close(e.closing)
		select {
		case <-e.done:
		case <-ctx.Done():
			e.cancel()
			// Everything the goroutine still does watches e.ctx, so it ends
			// at once; the bound only guards against a dialer that does not.
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-e.done:
			case <-t.C:
			}
			t.Stop()
		}
		e.cancel()
		e.client.CloseIdleConnections()
		e.mu.Lock()
		defer e.mu.Unlock()
		r := Result{
			Endpoint:  e.display,
			Offered:   e.offered.Load(),
			Delivered: e.delivered.Load(),
			Dropped:   e.dropped.Load(),
			Late:      e.late.Load(),
			Failed:    e.failed.Load(),
			Attempts:  e.attempts.Load(),
			LastError: e.lastErr,
			Flush:     time.Since(start),
		}
		r.Unsent = max(0, r.Offered-r.Delivered-r.Dropped-r.Late-r.Failed)
		e.result = r
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.result
}

// NotDelivered counts the records the collector did not get.
func (r Result) NotDelivered() int64 { return r.Offered - r.Delivered }

// Warning is the one summary line for an export that lost records, or ""
// when every record was delivered. It holds counts, the endpoint (without
// userinfo or query) and the latest error, never a header value.
func (r Result) Warning() string {
	n := r.NotDelivered()
	if n <= 0 {
		return ""
	}
	var why []string
	if r.Dropped > 0 {
		why = append(why, fmt.Sprintf("%d dropped (queue full)", r.Dropped))
	}
	if r.Late > 0 {
		why = append(why, fmt.Sprintf("%d after the exit flush began", r.Late))
	}
	if r.Failed > 0 {
		why = append(why, fmt.Sprintf("%d failed", r.Failed))
	}
	if r.Unsent > 0 {
		why = append(why, fmt.Sprintf("%d unsent when the exit flush gave up after %s", r.Unsent, r.Flush.Round(100*time.Millisecond)))
	}
	s := fmt.Sprintf("audit.otlp: %d of %d audit records not delivered to %s: %s", n, r.Offered, r.Endpoint, strings.Join(why, ", "))
	if r.LastError != "" {
		s += "; last error: " + r.LastError
	}
	return s
}

func (e *Exporter) setErr(msg string) {
	e.mu.Lock()
	e.lastErr = msg
	e.mu.Unlock()
}
