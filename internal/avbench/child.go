package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sizes bounds every loop of a run.
type sizes struct {
	Seq, ConcWorkers, ConcEach, Gzip, Chunked, NewConn, Burst int
	TransferMB                                                int
	Startups                                                  int
	// KeepAliveRounds alternates short keep-alive runs through the floor,
	// agentvault and agentvault --isolate, so that agentvault's distance to
	// the floor and isolation's per-request cost are compared under the
	// same load.
	KeepAliveRounds int
}

var (
	fullSizes  = sizes{Seq: 2000, ConcWorkers: 16, ConcEach: 500, Gzip: 200, Chunked: 200, NewConn: 300, Burst: 500, TransferMB: 100, Startups: 20, KeepAliveRounds: 7}
	quickSizes = sizes{Seq: 100, ConcWorkers: 4, ConcEach: 25, Gzip: 10, Chunked: 10, NewConn: 10, Burst: 20, TransferMB: 5, Startups: 3, KeepAliveRounds: 2}
)

// results is what one run of the client measured.
type results struct {
	SeqRPS, SeqP50us, SeqP99us float64
	ConcRPS                    float64
	GzipRPS, ChunkedRPS        float64
	GzipHandshakes             int64
	ChunkedHandshakes          int64
	NewConnRPS                 float64
	BurstConns, BurstErrors    int
	UploadMBps, DownloadMBps   float64
	SSEFirstMs                 float64
	PeakRSSKiB                 int64 // agentvault's (the parent's), proxy mode only
	TransferPeakRSSKiB         int64 // the same, after the 100 MB transfers and before the burst
}

// client is the measuring side: through a proxy (agentvault, or the floor in
// mode floor) it uses only what any Go agent would (HTTPS_PROXY,
// SSL_CERT_FILE); in direct mode it dials the upstream. key is the real key
// in modes direct and floor, agentvault's placeholder under agentvault.
type client struct {
	direct bool
	addr   string
	roots  *x509.CertPool
	key    string
}

func childMain() error {
	var sz sizes
	if err := json.Unmarshal([]byte(os.Getenv("AVBENCH_SIZES")), &sz); err != nil {
		return fmt.Errorf("AVBENCH_SIZES: %w", err)
	}
	c := &client{direct: os.Getenv("AVBENCH_MODE") == "direct", addr: os.Getenv("AVBENCH_ADDR"), key: os.Getenv("AVBENCH_KEY")}
	if c.direct {
		pem, err := os.ReadFile(os.Getenv("AVBENCH_CA"))
		if err != nil {
			return err
		}
		c.roots = x509.NewCertPool()
		c.roots.AppendCertsFromPEM(pem)
	} else {
		var err error
		if c.roots, err = x509.SystemCertPool(); err != nil { // honours SSL_CERT_FILE
			return err
		}
	}
	var r results
	var err error
	steps := []struct {
		name string
		run  func() error
	}{
		{"keep-alive sequential", func() error { r.SeqRPS, r.SeqP50us, r.SeqP99us, err = c.sequential(sz.Seq); return err }},
		{"keep-alive concurrent", func() error { r.ConcRPS, err = c.concurrent(sz.ConcWorkers, sz.ConcEach); return err }},
		{"gzip", func() error { r.GzipRPS, r.GzipHandshakes, err = c.repeated("/gzip", sz.Gzip); return err }},
		{"chunked", func() error { r.ChunkedRPS, r.ChunkedHandshakes, err = c.repeated("/chunked", sz.Chunked); return err }},
		{"new connections", func() error { r.NewConnRPS, err = c.newConnections(sz.NewConn); return err }},
		{"upload", func() error { r.UploadMBps, err = c.upload(sz.TransferMB); return err }},
		{"download", func() error {
			r.DownloadMBps, err = c.download(sz.TransferMB)
			// Before the burst, which dwarfs everything else: what a
			// session that moves large bodies keeps resident.
			if os.Getenv("AVBENCH_MODE") == "proxy" {
				r.TransferPeakRSSKiB = peakRSS(os.Getppid())
			}
			return err
		}},
		{"sse", func() error { r.SSEFirstMs, err = c.sse(); return err }},
		{"burst", func() error { r.BurstConns = sz.Burst; r.BurstErrors = c.burst(sz.Burst); return nil }},
	}
	if os.Getenv("AVBENCH_KEEPALIVE_ONLY") == "1" {
		steps = steps[:2]
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	// Inside the sandbox the parent is the sandbox's init, not agentvault.
	if os.Getenv("AVBENCH_MODE") == "proxy" {
		r.PeakRSSKiB = peakRSS(os.Getppid())
	}
	out, _ := json.Marshal(r)
	return os.WriteFile(os.Getenv("AVBENCH_OUT"), out, 0o600)
}

// transport returns a fresh transport; handshakes counts every TLS handshake
// the client does with whoever terminates its TLS (the proxy, or the upstream).
func (c *client) transport(keepAlive bool, handshakes *atomic.Int64) *http.Transport {
	tc := &tls.Config{RootCAs: c.roots, VerifyConnection: func(tls.ConnectionState) error {
		if handshakes != nil {
			handshakes.Add(1)
		}
		return nil
	}}
	t := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: false}
	if c.direct {
		d := &net.Dialer{Timeout: 10 * time.Second}
		t.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, c.addr)
		}
	} else {
		t.Proxy = http.ProxyFromEnvironment
	}
	return t
}

func (c *client) get(hc *http.Client, path string) error {
	req, _ := http.NewRequest("GET", "https://"+benchHost+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.key)
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err == nil && res.StatusCode != 200 {
		err = fmt.Errorf("status %d", res.StatusCode)
	}
	return err
}

func httpClient(t *http.Transport) *http.Client {
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

func (c *client) sequential(n int) (rps, p50, p99 float64, err error) {
	hc := httpClient(c.transport(true, nil))
	for i := 0; i < 50; i++ { // warm-up: connection, leaf certificate
		if err := c.get(hc, "/1k"); err != nil {
			return 0, 0, 0, err
		}
	}
	lat := make([]time.Duration, n)
	start := time.Now()
	for i := range lat {
		t0 := time.Now()
		if err := c.get(hc, "/1k"); err != nil {
			return 0, 0, 0, err
		}
		lat[i] = time.Since(t0)
	}
	total := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return float64(n) / total.Seconds(), us(lat[n/2]), us(lat[n*99/100]), nil
}

func (c *client) concurrent(workers, each int) (float64, error) {
	hc := httpClient(c.transport(true, nil))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := c.get(hc, "/1k"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(workers*each) / time.Since(start).Seconds(), nil
}

// repeated fetches path n times on one keep-alive client and reports the
// TLS handshakes that took: one, unless someone closes the connection.
func (c *client) repeated(path string, n int) (float64, int64, error) {
	var hs atomic.Int64
	hc := httpClient(c.transport(true, &hs))
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := c.get(hc, path); err != nil {
			return 0, 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), hs.Load(), nil
}

func (c *client) newConnections(n int) (float64, error) {
	hc := httpClient(c.transport(false, nil))
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := c.get(hc, "/1k"); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// burst opens n connections at once (one client each) and counts failures.
func (c *client) burst(n int) int {
	var failed atomic.Int64
	var ready, wg sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := httpClient(c.transport(false, nil))
			ready.Done()
			<-gate
			if err := c.get(hc, "/1k"); err != nil {
				failed.Add(1)
			}
		}()
	}
	ready.Wait()
	close(gate)
	wg.Wait()
	return int(failed.Load())
}

// zeros is an endless source of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func (c *client) upload(mb int) (float64, error) {
	hc := httpClient(c.transport(true, nil))
	n := int64(mb) << 20
	req, _ := http.NewRequest("POST", "https://"+benchHost+"/upload", io.LimitReader(zeros{}, n))
	req.ContentLength = n
	req.Header.Set("Authorization", "Bearer "+c.key)
	start := time.Now()
	res, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if got := strings.TrimSpace(string(body)); got != strconv.FormatInt(n, 10) {
		return 0, fmt.Errorf("upstream got %q bytes, want %d (status %d)", got, n, res.StatusCode)
	}
	return float64(mb) / time.Since(start).Seconds(), nil
}

func (c *client) download(mb int) (float64, error) {
	hc := httpClient(c.transport(true, nil))
	n := int64(mb) << 20
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://%s/download?bytes=%d", benchHost, n), nil)
	req.Header.Set("Authorization", "Bearer "+c.key)
	start := time.Now()
	res, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	got, _ := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if got != n {
		return 0, fmt.Errorf("got %d bytes, want %d (status %d)", got, n, res.StatusCode)
	}
	return float64(mb) / time.Since(start).Seconds(), nil
}

// sse reports how long the first event took from the upstream's write (its
// timestamp is the event's data) to the client's read; same clock.
func (c *client) sse() (float64, error) {
	hc := httpClient(c.transport(true, nil))
	// Warm the connection so the figure is the stream's, not the handshake's.
	if err := c.get(hc, "/1k"); err != nil {
		return 0, err
	}
	req, _ := http.NewRequest("GET", "https://"+benchHost+"/sse", nil)
	req.Header.Set("Authorization", "Bearer "+c.key)
	res, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			sent, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, err
			}
			return float64(time.Now().UnixNano()-sent) / 1e6, nil
		}
	}
	return 0, errors.New("no event")
}

// peakRSS reads VmHWM of pid in KiB (0 if unreadable).
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
