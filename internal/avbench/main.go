// Command avbench measures agentvault from the outside, the way an agent
// meets it: the built binary runs a client program as its child, and the
// same client runs again with a direct connection to the same local HTTPS
// upstream in the same run, and once more inside the sandbox of
// `run --isolate` where the machine allows it. Every figure is printed with
// its ratio to direct, and isolation's with its ratio to agentvault without
// it, since absolute numbers on shared machines mean little.
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
	"io"
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
		// As released (.goreleaser.yaml): a static binary, which every
		// start under --isolate executes twice, needs no dynamic loader.
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
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

	// The same client again inside the sandbox (--isolate), where it meets
	// the proxy on the sandbox's own loopback; a machine that refuses
	// isolation (exit 78) gets a note instead of the column.
	isoOut := filepath.Join(dir, "isolated.json")
	iso := exec.Command(*avPath, append(append(runArgs, "--isolate"), "--", self, "child")...)
	iso.Env = append(base, "AVBENCH_MODE=isolated", "AVBENCH_OUT="+isoOut)
	var isoErr bytes.Buffer
	iso.Stderr = io.MultiWriter(os.Stderr, &isoErr)
	fmt.Fprintln(os.Stderr, "avbench: through agentvault --isolate")
	isolation := ""
	if err := iso.Run(); err != nil {
		if iso.ProcessState == nil || iso.ProcessState.ExitCode() != 78 {
			return fmt.Errorf("run --isolate: %w", err)
		}
		isolation = strings.TrimSpace(isoErr.String())
	}

	startup, err := measureStartup(*avPath, cfg, base, sizes.Startups, isolation == "")
	if err != nil {
		return err
	}
	var d, p, i results
	if err := readJSON(directOut, &d); err != nil {
		return err
	}
	if err := readJSON(proxOut, &p); err != nil {
		return err
	}
	if isolation == "" {
		if err := readJSON(isoOut, &i); err != nil {
			return err
		}
	}
	var ka keepAlive
	if isolation == "" {
		if ka, err = alternateKeepAlive(*avPath, self, runArgs, base, dir, sizes.KeepAliveRounds); err != nil {
			return err
		}
	}
	report(os.Stdout, d, p, i, startup, isolation)
	if isolation == "" {
		ka.report(os.Stdout)
	}
	return nil
}

// startups are the medians of `agentvault run -- true` end to end (start,
// config, CA, proxy, child, cleanup), with and without --isolate.
type startups struct{ host, isolated time.Duration }

// measureStartup times n runs of each kind after one warm-up of each,
// alternating them so that a change in the machine's load hits both alike.
func measureStartup(av, cfg string, env []string, n int, isolated bool) (startups, error) {
	kinds := [][]string{{"run", "-q", "-c", cfg, "--", "true"}}
	if isolated {
		kinds = append(kinds, []string{"run", "-q", "--isolate", "-c", cfg, "--", "true"})
	}
	ds := make([][]time.Duration, len(kinds))
	for i := 0; i <= n; i++ {
		for k, args := range kinds {
			cmd := exec.Command(av, args...)
			cmd.Env = env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return startups{}, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, stderr.String())
			}
			if i > 0 {
				ds[k] = append(ds[k], time.Since(start))
			}
		}
	}
	median := func(d []time.Duration) time.Duration {
		if len(d) == 0 {
			return 0
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	s := startups{host: median(ds[0])}
	if isolated {
		s.isolated = median(ds[1])
	}
	return s, nil
}

// keepAlive holds the keep-alive figures of alternated runs, per mode.
type keepAlive struct {
	seq, conc [2][]float64 // [host, isolated]
}

// alternateKeepAlive runs the client's two keep-alive steps through
// agentvault, rounds times in each mode, alternating: the figures of one
// long run per mode drift with the load of a shared machine by more than
// isolation could cost per request, which is nothing by design (the proxy
// accepts the sandbox's connections itself, without a relay).
func alternateKeepAlive(av, self string, runArgs, base []string, dir string, rounds int) (keepAlive, error) {
	var ka keepAlive
	for r := 0; r < rounds; r++ {
		for m, extra := range [][]string{nil, {"--isolate"}} {
			out := filepath.Join(dir, fmt.Sprintf("keepalive-%d-%d.json", r, m))
			args := append(append(append([]string{}, runArgs...), extra...), "--", self, "child")
			cmd := exec.Command(av, args...)
			cmd.Env = append(base, "AVBENCH_MODE=keepalive", "AVBENCH_KEEPALIVE_ONLY=1", "AVBENCH_OUT="+out)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				return ka, fmt.Errorf("keep-alive round %d %v: %w", r, extra, err)
			}
			var res results
			if err := readJSON(out, &res); err != nil {
				return ka, err
			}
			ka.seq[m] = append(ka.seq[m], res.SeqRPS)
			ka.conc[m] = append(ka.conc[m], res.ConcRPS)
		}
	}
	return ka, nil
}

func (ka keepAlive) report(w io.Writer) {
	median := func(v []float64) float64 {
		v = append([]float64(nil), v...)
		sort.Float64s(v)
		return v[len(v)/2]
	}
	fmt.Fprintf(w, "\nkeep-alive through the proxy, %d alternated runs each (median):\n", len(ka.seq[0]))
	for _, f := range []struct {
		name string
		v    [2][]float64
	}{{"sequential", ka.seq}, {"16 concurrent", ka.conc}} {
		h, i := median(f.v[0]), median(f.v[1])
		fmt.Fprintf(w, "  %-14s agentvault %10.1f r/s   --isolate %10.1f r/s   ratio %.2f\n", f.name, h, i, i/h)
	}
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// report prints each figure for direct, agentvault and agentvault
// --isolate, with agentvault's ratio to direct and isolation's ratio to
// agentvault without it (isolation's own cost). isolation is why the
// sandbox was refused; "" when it ran.
func report(w io.Writer, d, p, i results, startup startups, isolation string) {
	iso := isolation == ""
	fmt.Fprintf(w, "%-34s %14s %14s %7s %14s %9s\n", "figure", "direct", "agentvault", "ratio", "--isolate", "iso/host")
	fmt.Fprintln(w, strings.Repeat("-", 98))
	ratio := func(a, b float64) float64 {
		if a > 0 {
			return b / a
		}
		return 0
	}
	row := func(name string, dv, pv, iv float64, unit string) {
		fmt.Fprintf(w, "%-34s %10.1f %-3s %10.1f %-3s %7.2f", name, dv, unit, pv, unit, ratio(dv, pv))
		if iso {
			fmt.Fprintf(w, " %10.1f %-3s %9.2f", iv, unit, ratio(pv, iv))
		}
		fmt.Fprintln(w)
	}
	row("keep-alive sequential", d.SeqRPS, p.SeqRPS, i.SeqRPS, "r/s")
	row("  p50", d.SeqP50us, p.SeqP50us, i.SeqP50us, "us")
	row("  p99", d.SeqP99us, p.SeqP99us, i.SeqP99us, "us")
	row("keep-alive, 16 concurrent", d.ConcRPS, p.ConcRPS, i.ConcRPS, "r/s")
	row("gzip responses", d.GzipRPS, p.GzipRPS, i.GzipRPS, "r/s")
	row("chunked responses", d.ChunkedRPS, p.ChunkedRPS, i.ChunkedRPS, "r/s")
	row("new connection each request", d.NewConnRPS, p.NewConnRPS, i.NewConnRPS, "r/s")
	row("100 MB upload", d.UploadMBps, p.UploadMBps, i.UploadMBps, "MB/s")
	row("100 MB download", d.DownloadMBps, p.DownloadMBps, i.DownloadMBps, "MB/s")
	fmt.Fprintf(w, "%-34s %14d %14d %7s %14d\n", "client TLS handshakes, gzip", d.GzipHandshakes, p.GzipHandshakes, "", i.GzipHandshakes)
	fmt.Fprintf(w, "%-34s %14d %14d %7s %14d\n", "client TLS handshakes, chunked", d.ChunkedHandshakes, p.ChunkedHandshakes, "", i.ChunkedHandshakes)
	fmt.Fprintf(w, "%-34s %14d %14d %7s %14d\n", fmt.Sprintf("errors, %d connections at once", d.BurstConns), d.BurstErrors, p.BurstErrors, "", i.BurstErrors)
	fmt.Fprintf(w, "%-34s %14.2f %14.2f %7s %14.2f\n", "SSE first event delay (ms)", d.SSEFirstMs, p.SSEFirstMs, "", i.SSEFirstMs)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Fprintf(w, "%-34s %14s %11.1f ms %7s", "run -- true (median)", "-", ms(startup.host), "")
	if iso {
		fmt.Fprintf(w, " %11.1f ms %9.2f  (%+.1f ms)", ms(startup.isolated), ratio(ms(startup.host), ms(startup.isolated)), ms(startup.isolated-startup.host))
	}
	fmt.Fprintln(w)
	if p.PeakRSSKiB > 0 {
		fmt.Fprintf(w, "%-34s %14s %11.1f MB\n", "agentvault peak RSS (whole run)", "-", float64(p.PeakRSSKiB)/1024)
	}
	if !iso {
		fmt.Fprintf(w, "--isolate: not measured, refused here: %s\n", isolation)
	}
}
