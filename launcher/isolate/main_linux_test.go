package isolate

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/agentvault/agentvault/launcher"
)

// The test binary is re-executed as a sandbox's PID 1 (by Start) and as a
// helper that runs one sandboxed script, so that tests can run it as another
// user and inside restricted namespaces.
const helperVar = "ISOLATE_TEST_HELPER"

func TestMain(m *testing.M) {
	if IsInit() {
		os.Exit(Main())
	}
	if os.Getenv(helperVar) == "run" {
		os.Exit(runHelper())
	}
	if os.Getenv(helperVar) == "transparent" {
		os.Exit(transparentHelper())
	}
	os.Exit(m.Run())
}

// runHelper starts a sandbox hiding $ISOLATE_HIDE (colon-separated), serves
// "proxied" over HTTP on a listener inside it at 127.0.0.1:$ISOLATE_PORT, and
// runs $ISOLATE_SCRIPT there with sh; it exits with the script's status, or
// prints the refusal and exits 78.
func runHelper() int {
	var hide []string
	if h := os.Getenv("ISOLATE_HIDE"); h != "" {
		hide = strings.Split(h, ":")
	}
	dir, _ := os.Getwd()
	sb, err := Start(Spec{Dir: dir, Hide: hide})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if _, ok := err.(*Refused); ok {
			return 78
		}
		return 70
	}
	defer sb.Close()
	port, _ := strconv.Atoi(os.Getenv("ISOLATE_PORT"))
	ln, err := sb.Listen(port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 70
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "proxied") }))
	status, err := launcher.Run(context.Background(), launcher.Cmd{
		Argv:    []string{"/bin/sh", "-c", os.Getenv("ISOLATE_SCRIPT")},
		Env:     []string{"PATH=/usr/bin:/bin", "PORT=" + strconv.Itoa(port)},
		Sandbox: sb,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
	}
	return status
}

// freePort is a port number free on the host's loopback at the time of the
// call; inside a sandbox every port is free.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
