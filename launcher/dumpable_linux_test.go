package launcher

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func getDumpable() string {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return "error: " + err.Error()
	}
	return strconv.Itoa(v)
}

func init() {
	helpers["report-dumpable"] = func() int {
		fmt.Println("child=" + getDumpable())
		return 0
	}
	// nondumpable marks itself, reports, waits for stdin to close (so the
	// test can probe /proc), then starts a child that reports its own flag.
	helpers["nondumpable"] = func() int {
		if err := MakeNonDumpable(); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("self=" + getDumpable())
		_, _ = io.Copy(io.Discard, os.Stdin)
		status, err := Run(context.Background(), Cmd{
			Argv:  []string{testBinary()},
			Env:   []string{helperVar + "=report-dumpable", raceNoExitSleep},
			Stdin: strings.NewReader(""),
		})
		if err != nil {
			fmt.Println("error:", err)
		}
		return status
	}
}

func TestMakeNonDumpable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := execHelper(ctx, "nondumpable")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(out, buf, len("self=0\n"))
	if got := string(buf[:n]); got != "self=0\n" {
		t.Errorf("helper reported %q, want self=0", got)
	}
	// Only a process without CAP_SYS_PTRACE is kept out; root reads anyway.
	if os.Geteuid() != 0 {
		if _, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid)); err == nil {
			t.Error("read a non-dumpable process's environ as the same uid")
		}
	} else {
		t.Log("running as root: /proc access check skipped")
	}
	stdin.Close()
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v; output %q", err, rest)
	}
	if got := strings.TrimSpace(string(rest)); got != "child=1" {
		t.Errorf("child reported %q, want child=1 (execve restores dumpable)", got)
	}
}
