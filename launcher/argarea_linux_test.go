//go:build linux

package launcher

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// scrubArgArea is macOS's scrub; Linux lays argv and the environment out the
// same way (contiguous strings on the stack, os.Args pointing at them), so it
// runs here against the real memory, with the KERN_PROCARGS2 snapshot built
// from /proc/self/cmdline and /proc/self/environ. Each case runs in a
// re-executed test binary so the runner's own environment stays intact.
func TestScrubArgArea(t *testing.T) {
	if mode := os.Getenv("AV_ARGAREA_CHILD"); mode != "" {
		os.Exit(argAreaChild(mode))
	}
	tests := []struct {
		mode     string
		wantExit int
	}{
		{"scrub", 0},           // the block is zeroed, the runtime copy and argv survive
		{"copied-args", 10},    // os.Args copies: refused, nothing written
		{"stale-snapshot", 10}, // memory differs from the snapshot: refused, nothing written
		{"changed-env", 10},    // env differs from the block: refused, nothing written
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestScrubArgArea$")
			cmd.Env = []string{"AV_ARGAREA_CHILD=" + tc.mode, "AV_ARGAREA_SECRET=argarea-secret-42", "AV_ARGAREA_LAST=z"}
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantExit {
				t.Fatalf("child exit %d; want %d: %s", code, tc.wantExit, out)
			}
		})
	}
}

// argAreaChild returns 0 when the scrub worked, 10 when it refused and left
// the block as it was, anything else for a failure.
func argAreaChild(mode string) int {
	cmdline, err1 := os.ReadFile("/proc/self/cmdline")
	environ, err2 := os.ReadFile("/proc/self/environ")
	if err1 != nil || err2 != nil {
		return 2
	}
	snap := binary.LittleEndian.AppendUint32(nil, uint32(len(os.Args)))
	snap = append(snap, "/exe\x00\x00\x00"...)
	snap = append(append(snap, cmdline...), environ...)
	// Above the environment Linux keeps the executed file's name (the test
	// binary's path here), standing in for macOS's apple strings: the scrub
	// must compare it and leave it alone.
	snap = append(append(snap, os.Args[0]...), 0)
	args, env := os.Args, os.Environ()
	switch mode {
	case "copied-args":
		args = make([]string, len(os.Args))
		for i, a := range os.Args {
			args[i] = strings.Clone(a)
		}
	case "stale-snapshot":
		// Only the memory comparison sees this byte: envBlock stops before it.
		snap[len(snap)-1-len(os.Args[0])] ^= 1
	case "changed-env":
		env = append([]string(nil), env...)
		env[1] = "AV_ARGAREA_SECRET=other"
	}
	err := scrubArgArea(snap, args, env)
	after, _ := os.ReadFile("/proc/self/environ")
	argv, _ := os.ReadFile("/proc/self/cmdline")
	if !bytes.Equal(argv, cmdline) {
		os.Stderr.WriteString("argv changed\n")
		return 3
	}
	if os.Getenv("AV_ARGAREA_SECRET") != "argarea-secret-42" {
		os.Stderr.WriteString("the runtime's copy changed\n")
		return 4
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		if !bytes.Equal(after, environ) {
			os.Stderr.WriteString("refused but wrote\n")
			return 5
		}
		return 10
	}
	if bytes.Contains(after, []byte("argarea-secret-42")) || len(bytes.Trim(after, "\x00")) != 0 {
		os.Stderr.WriteString("environment block not zeroed\n")
		return 6
	}
	return 0
}
