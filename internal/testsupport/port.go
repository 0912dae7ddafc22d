package testsupport

import (
	"net"
	"testing"
)

// FreePort is a TCP port free on 127.0.0.1 when it returns. Another process
// may take it before the caller binds it, which is why the launchers retry.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
