// Command avbench measures agentvault from the outside, the way an agent
// meets it: the built binary runs a client program as its child, and the
// same client runs again with a direct connection to the same local HTTPS
// upstream in the same run. Every figure is printed with its ratio to
// direct, since absolute numbers on shared machines mean little.
//
//	go run ./internal/avbench [-agentvault PATH] [-quick]
//
// Everything listens on 127.0.0.1; the upstream is reached as
// api.example.test through --connect-to. Every loop is bounded in count and
// each request in time.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		if err := childMain(); err != nil {
			fmt.Fprintln(os.Stderr, "avbench child:", err)
			os.Exit(1)
		}
		return
	}
	if err := harness(); err != nil {
		fmt.Fprintln(os.Stderr, "avbench:", err)
		os.Exit(1)
	}
}

const benchHost = "api.example.test"

func harness() error {
	avPath := flag.String("agentvault", "", "agentvault binary (default: build ./cmd/agentvault)")
	quick := flag.Bool("quick", false, "fewer iterations (a smoke run, not a measurement)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "avbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	if *avPath == "" {
		*avPath = filepath.Join(dir, "agentvault")
		build := exec.Command("go", "build", "-o", *avPath, "./cmd/agentvault")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building agentvault: %w", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	up, err := startUpstream(dir)
	if err != nil {
		return err
	}
	defer up.close()

	cfg := filepath.Join(dir, "agentvault.yaml")
	if err := os.WriteFile(cfg, []byte(`version: 1
credentials:
  - name: bench
    secret: env:AVBENCH_KEY
    hosts: [`+benchHost+`]
    inject: bearer
    env: [AVBENCH_KEY]
`), 0o600); err != nil {
		return err
	}
	sizes := fullSizes
	if *quick {
		sizes = quickSizes
	}
	spec, _ := json.Marshal(sizes)
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "AVBENCH_SIZES=" + string(spec), "AVBENCH_KEY=" + up.key}

	directOut := filepath.Join(dir, "direct.json")
	direct := exec.Command(self, "child")
	direct.Env = append(base, "AVBENCH_MODE=direct", "AVBENCH_OUT="+directOut, "AVBENCH_ADDR="+up.addr, "AVBENCH_CA="+up.caPath)
	direct.Stderr = os.Stderr
	fmt.Fprintln(os.Stderr, "avbench: direct run")
	if err := direct.Run(); err != nil {
		return fmt.Errorf("direct run: %w", err)
	}

	proxOut := filepath.Join(dir, "proxy.json")
	runArgs := []string{"run", "-q", "-c", cfg, "--upstream-ca", up.caPath,
		"--connect-to", benchHost + ":443:" + up.addr}
	prox := exec.Command(*avPath, append(runArgs, "--", self, "child")...)
	prox.Env = append(base, "AVBENCH_MODE=proxy", "AVBENCH_OUT="+proxOut)
	prox.Stderr = os.Stderr
	fmt.Fprintln(os.Stderr, "avbench: through agentvault")
	if err := prox.Run(); err != nil {
		return fmt.Errorf("run through agentvault: %w", err)
	}
	if up.seenPlaceholder.Load() || !up.seenKey.Load() {
		return fmt.Errorf("the upstream did not get the real key (placeholder seen: %v)", up.seenPlaceholder.Load())
	}

	startup, err := measureStartup(*avPath, cfg, base, sizes.Startups)
	if err != nil {
		return err
	}
	var d, p results
	if err := readJSON(directOut, &d); err != nil {
		return err
	}
	if err := readJSON(proxOut, &p); err != nil {
		return err
	}
	report(os.Stdout, d, p, startup)
	return nil
}

// measureStartup times `agentvault run -- true` end to end: start, config,
// CA, proxy, child, cleanup. It reports the median of n runs after one warm-up.
func measureStartup(av, cfg string, env []string, n int) (time.Duration, error) {
	var ds []time.Duration
	for i := 0; i <= n; i++ {
		cmd := exec.Command(av, "run", "-q", "-c", cfg, "--", "true")
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("run -- true: %v: %s", err, stderr.String())
		}
		if i > 0 {
			ds = append(ds, time.Since(start))
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func report(w *os.File, d, p results, startup time.Duration) {
	fmt.Fprintf(w, "%-34s %16s %16s %7s\n", "figure", "direct", "agentvault", "ratio")
	fmt.Fprintln(w, strings.Repeat("-", 76))
	row := func(name string, dv, pv float64, unit string, higherBetter bool) {
		ratio := 0.0
		if dv > 0 {
			ratio = pv / dv
		}
		_ = higherBetter
		fmt.Fprintf(w, "%-34s %12.1f %-3s %12.1f %-3s %6.2f\n", name, dv, unit, pv, unit, ratio)
	}
	row("keep-alive sequential", d.SeqRPS, p.SeqRPS, "r/s", true)
	row("  p50", d.SeqP50us, p.SeqP50us, "us", false)
	row("  p99", d.SeqP99us, p.SeqP99us, "us", false)
	row("keep-alive, 16 concurrent", d.ConcRPS, p.ConcRPS, "r/s", true)
	row("gzip responses", d.GzipRPS, p.GzipRPS, "r/s", true)
	row("chunked responses", d.ChunkedRPS, p.ChunkedRPS, "r/s", true)
	row("new connection each request", d.NewConnRPS, p.NewConnRPS, "r/s", true)
	row("100 MB upload", d.UploadMBps, p.UploadMBps, "MB/s", true)
	row("100 MB download", d.DownloadMBps, p.DownloadMBps, "MB/s", true)
	fmt.Fprintf(w, "%-34s %16d %16d\n", "client TLS handshakes, gzip", d.GzipHandshakes, p.GzipHandshakes)
	fmt.Fprintf(w, "%-34s %16d %16d\n", "client TLS handshakes, chunked", d.ChunkedHandshakes, p.ChunkedHandshakes)
	fmt.Fprintf(w, "%-34s %16d %16d\n", fmt.Sprintf("errors, %d connections at once", d.BurstConns), d.BurstErrors, p.BurstErrors)
	fmt.Fprintf(w, "%-34s %16.2f %16.2f %+6.2f ms added\n", "SSE first event delay (ms)", d.SSEFirstMs, p.SSEFirstMs, p.SSEFirstMs-d.SSEFirstMs)
	fmt.Fprintf(w, "%-34s %16s %13.1f ms\n", "run -- true (median)", "-", float64(startup)/float64(time.Millisecond))
	if p.PeakRSSKiB > 0 {
		fmt.Fprintf(w, "%-34s %16s %13.1f MB\n", "agentvault peak RSS (whole run)", "-", float64(p.PeakRSSKiB)/1024)
	}
}
