// Command avbench measures agentvault from the outside, the way an agent
// meets it: the built binary runs a client program as its child, and the
// same client runs again with a direct connection to the same local HTTPS
// upstream in the same run, through the floor (`avbench floor`: the least
// work any TLS-inspecting proxy must do, in its own process: CONNECT, TLS
// on both sides, bytes copied, no HTTP parsing, no injection), and once more
// inside the sandbox of `run --isolate` where the machine allows it. Every
// figure is printed with agentvault's ratio to direct and to the floor (the
// limit this machine sets for any proxy), and isolation's with its ratio to
// agentvault without it, since absolute numbers on shared machines mean
// little. Keep-alive is measured again in alternated short runs (floor,
// agentvault, --isolate) and reported as medians, since one long run per
// mode drifts with a shared machine's load.
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
	"slices"
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
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		if err := floorMain(); err != nil {
			fmt.Fprintln(os.Stderr, "avbench floor:", err)
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

	fl, err := startFloor(self, dir, up.addr, up.caPath)
	if err != nil {
		return fmt.Errorf("starting the floor: %w", err)
	}
	defer fl.close()
	// The client trusts the floor's CA the way agentvault's child trusts
	// agentvault's, and sends the real key itself: the floor injects nothing.
	floorEnv := slices.Clip(append(append([]string{}, base...), "AVBENCH_MODE=floor", "HTTPS_PROXY=http://"+fl.addr, "SSL_CERT_FILE="+fl.caPath))
	floorOut := filepath.Join(dir, "floor.json")
	floorRun := exec.Command(self, "child")
	floorRun.Env = append(floorEnv, "AVBENCH_OUT="+floorOut)
	floorRun.Stderr = os.Stderr
	fmt.Fprintln(os.Stderr, "avbench: through the floor")
	if err := floorRun.Run(); err != nil {
		return fmt.Errorf("run through the floor: %w", err)
	}

	// Direct and floor runs sent the real key themselves; only what reaches
	// the upstream from here on shows that agentvault injected it.
	up.seenKey.Store(false)
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
	var d, f, p, i results
	if err := readJSON(directOut, &d); err != nil {
		return err
	}
	if err := readJSON(floorOut, &f); err != nil {
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
	ka, err := alternateKeepAlive(*avPath, self, runArgs, base, floorEnv, dir, sizes.KeepAliveRounds, isolation == "")
	if err != nil {
		return err
	}
	if up.seenPlaceholder.Load() {
		return fmt.Errorf("the upstream got a placeholder in the keep-alive rounds")
	}
	report(os.Stdout, d, f, p, i, startup, isolation)
	ka.report(os.Stdout)
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
	seq, conc [3][]float64 // [floor, agentvault, agentvault --isolate]
	isolated  bool
}

// alternateKeepAlive runs the client's two keep-alive steps through the
// floor, agentvault and (when isolated) agentvault --isolate, rounds times
// each, alternating: the figures of one long run per mode drift with the
// load of a shared machine by more than isolation could cost per request,
// which is nothing by design (the proxy accepts the sandbox's connections
// itself, without a relay), and by as much as agentvault's distance to the
// floor.
func alternateKeepAlive(av, self string, runArgs, base, floorEnv []string, dir string, rounds int, isolated bool) (keepAlive, error) {
	ka := keepAlive{isolated: isolated}
	modes := 2
	if isolated {
		modes = 3
	}
	for r := 0; r < rounds; r++ {
		for m := 0; m < modes; m++ {
			out := filepath.Join(dir, fmt.Sprintf("keepalive-%d-%d.json", r, m))
			var cmd *exec.Cmd
			switch m {
			case 0:
				cmd = exec.Command(self, "child")
				cmd.Env = append(floorEnv, "AVBENCH_KEEPALIVE_ONLY=1", "AVBENCH_OUT="+out)
			default:
				args := append([]string{}, runArgs...)
				if m == 2 {
					args = append(args, "--isolate")
				}
				cmd = exec.Command(av, append(args, "--", self, "child")...)
				cmd.Env = append(base, "AVBENCH_MODE=keepalive", "AVBENCH_KEEPALIVE_ONLY=1", "AVBENCH_OUT="+out)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				return ka, fmt.Errorf("keep-alive round %d, mode %d: %w", r, m, err)
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
	fmt.Fprintf(w, "\nkeep-alive through a proxy, %d alternated runs each (median):\n", len(ka.seq[0]))
	for _, f := range []struct {
		name string
		v    [3][]float64
	}{{"sequential", ka.seq}, {"16 concurrent", ka.conc}} {
		fl, h := median(f.v[0]), median(f.v[1])
		fmt.Fprintf(w, "  %-14s floor %10.1f r/s   agentvault %10.1f r/s   av/floor %.2f", f.name, fl, h, h/fl)
		if ka.isolated {
			i := median(f.v[2])
			fmt.Fprintf(w, "   --isolate %10.1f r/s   iso/host %.2f", i, i/h)
		}
		fmt.Fprintln(w)
	}
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// report prints each figure for direct, the floor, agentvault and
// agentvault --isolate, with agentvault's ratio to direct (ratio) and to the
// floor (av/floor), and isolation's ratio to agentvault without it
// (isolation's own cost). isolation is why the sandbox was refused; "" when
// it ran. The floor has no start-up or RSS worth comparing: it is not a
// program that starts a child. It is no bound for new connections:
// agentvault may keep an upstream connection across client connections,
// which a proxy that copies bytes without parsing HTTP cannot.
func report(w io.Writer, d, f, p, i results, startup startups, isolation string) {
	iso := isolation == ""
	fmt.Fprintf(w, "%-34s %15s %15s %15s %7s %8s", "figure", "direct", "floor", "agentvault", "ratio", "av/floor")
	width := 34 + 3*16 + 8 + 9
	if iso {
		fmt.Fprintf(w, " %15s %9s", "--isolate", "iso/host")
		width += 16 + 10
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, strings.Repeat("-", width))
	ratio := func(a, b float64) float64 {
		if a > 0 {
			return b / a
		}
		return 0
	}
	row := func(name string, dv, fv, pv, iv float64, unit string) {
		fmt.Fprintf(w, "%-34s %10.1f %-4s %10.1f %-4s %10.1f %-4s %7.2f %8.2f", name, dv, unit, fv, unit, pv, unit, ratio(dv, pv), ratio(fv, pv))
		if iso {
			fmt.Fprintf(w, " %10.1f %-4s %9.2f", iv, unit, ratio(pv, iv))
		}
		fmt.Fprintln(w)
	}
	row("keep-alive sequential", d.SeqRPS, f.SeqRPS, p.SeqRPS, i.SeqRPS, "r/s")
	row("  p50", d.SeqP50us, f.SeqP50us, p.SeqP50us, i.SeqP50us, "us")
	row("  p99", d.SeqP99us, f.SeqP99us, p.SeqP99us, i.SeqP99us, "us")
	row("keep-alive, 16 concurrent", d.ConcRPS, f.ConcRPS, p.ConcRPS, i.ConcRPS, "r/s")
	row("gzip responses", d.GzipRPS, f.GzipRPS, p.GzipRPS, i.GzipRPS, "r/s")
	row("chunked responses", d.ChunkedRPS, f.ChunkedRPS, p.ChunkedRPS, i.ChunkedRPS, "r/s")
	row("new connection each request", d.NewConnRPS, f.NewConnRPS, p.NewConnRPS, i.NewConnRPS, "r/s")
	row("100 MB upload", d.UploadMBps, f.UploadMBps, p.UploadMBps, i.UploadMBps, "MB/s")
	row("100 MB download", d.DownloadMBps, f.DownloadMBps, p.DownloadMBps, i.DownloadMBps, "MB/s")
	counts := func(name string, dv, fv, pv, iv int64) {
		fmt.Fprintf(w, "%-34s %15d %15d %15d %7s %8s", name, dv, fv, pv, "", "")
		if iso {
			fmt.Fprintf(w, " %15d", iv)
		}
		fmt.Fprintln(w)
	}
	counts("client TLS handshakes, gzip", d.GzipHandshakes, f.GzipHandshakes, p.GzipHandshakes, i.GzipHandshakes)
	counts("client TLS handshakes, chunked", d.ChunkedHandshakes, f.ChunkedHandshakes, p.ChunkedHandshakes, i.ChunkedHandshakes)
	counts(fmt.Sprintf("errors, %d connections at once", d.BurstConns), int64(d.BurstErrors), int64(f.BurstErrors), int64(p.BurstErrors), int64(i.BurstErrors))
	fmt.Fprintf(w, "%-34s %15.2f %15.2f %15.2f %7s %8s", "SSE first event delay (ms)", d.SSEFirstMs, f.SSEFirstMs, p.SSEFirstMs, "", "")
	if iso {
		fmt.Fprintf(w, " %15.2f", i.SSEFirstMs)
	}
	fmt.Fprintln(w)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Fprintf(w, "%-34s %15s %15s %10.1f %-4s %7s %8s", "run -- true (median)", "-", "-", ms(startup.host), "ms", "", "")
	if iso {
		fmt.Fprintf(w, " %10.1f %-4s %9.2f  (%+.1f ms)", ms(startup.isolated), "ms", ratio(ms(startup.host), ms(startup.isolated)), ms(startup.isolated-startup.host))
	}
	fmt.Fprintln(w)
	if p.TransferPeakRSSKiB > 0 {
		fmt.Fprintf(w, "%-34s %15s %15s %10.1f %-4s\n", "agentvault peak RSS, before burst", "-", "-", float64(p.TransferPeakRSSKiB)/1024, "MB")
	}
	if p.PeakRSSKiB > 0 {
		fmt.Fprintf(w, "%-34s %15s %15s %10.1f %-4s\n", "agentvault peak RSS (whole run)", "-", "-", float64(p.PeakRSSKiB)/1024, "MB")
	}
	if !iso {
		fmt.Fprintf(w, "--isolate: not measured, refused here: %s\n", isolation)
	}
}
