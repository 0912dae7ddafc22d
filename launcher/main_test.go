package launcher

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
)

// The signal and dumpable tests re-exec the test binary as a helper process,
// so that signals and prctl hit that helper rather than the test runner.
const helperVar = "LAUNCHER_TEST_HELPER"

// raceNoExitSleep spares -race helpers the race runtime's 1s pause at exit.
const raceNoExitSleep = "GORACE=atexit_sleep_ms=0"

var helpers = map[string]func() int{
	// run executes $LAUNCHER_TEST_SCRIPT through Run and exits with its status.
	"run": func() int {
		status, err := Run(context.Background(), Cmd{
			Argv: []string{"/bin/sh", "-c", os.Getenv("LAUNCHER_TEST_SCRIPT")},
			Env:  []string{"PATH=/usr/bin:/bin"},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
		}
		return status
	},
}

func TestMain(m *testing.M) {
	if name := os.Getenv(helperVar); name != "" {
		h, ok := helpers[name]
		if !ok {
			fmt.Fprintln(os.Stderr, "unknown helper", name)
			os.Exit(2)
		}
		os.Exit(h())
	}
	for _, s := range handledSignals {
		ignoredAtStart[s] = signal.Ignored(s)
	}
	os.Exit(m.Run())
}

var handledSignals = []os.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP}

// ignoredAtStart is recorded before any test runs Run in this process, so a
// Run that leaves a signal ignored cannot make the signal tests skip.
var ignoredAtStart = map[os.Signal]bool{}

// testBinary is this test executable, for re-running it as a helper.
func testBinary() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return os.Args[0]
}

// execHelper prepares the test binary as helper name, with a clean
// environment so the machine's settings cannot leak into the test.
func execHelper(ctx context.Context, name string, extraEnv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, testBinary())
	cmd.Env = append([]string{helperVar + "=" + name, "PATH=/usr/bin:/bin", raceNoExitSleep}, extraEnv...)
	cmd.Stderr = os.Stderr
	return cmd
}
