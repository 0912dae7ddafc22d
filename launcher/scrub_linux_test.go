//go:build linux

package launcher

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// The scrub runs in a re-executed copy of the test binary, so the test
// runner's own environment block stays intact.
func TestScrubEnviron(t *testing.T) {
	if os.Getenv("AV_SCRUB_CHILD") == "1" {
		if err := ScrubEnviron(); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(2)
		}
		if os.Getenv("AV_SCRUB_SECRET") != "scrub-me-42" {
			os.Exit(3) // the runtime's copy must survive
		}
		b, _ := os.ReadFile("/proc/self/environ")
		if bytes.Contains(b, []byte("scrub-me-42")) {
			os.Exit(4)
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestScrubEnviron$")
	cmd.Env = []string{"AV_SCRUB_CHILD=1", "AV_SCRUB_SECRET=scrub-me-42"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
}
