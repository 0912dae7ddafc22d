package e2e

import (
	"crypto/tls"
	"os"

	"github.com/agentvault/agentvault/internal/testsupport"
)

// testAuthority is the CA the local upstreams chain to; agentvault learns it
// through --upstream-ca, the harness self-tests through --cacert.
type testAuthority struct {
	*testsupport.CA
	PEMPath string
	Leaf    tls.Certificate // valid for every name passed to newTestAuthority
}

func newTestAuthority(pemPath string, names ...string) (*testAuthority, error) {
	ca, err := testsupport.NewCA("agentvault e2e test CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Leaf(names...)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(pemPath, ca.PEM(), 0o644); err != nil {
		return nil, err
	}
	return &testAuthority{CA: ca, PEMPath: pemPath, Leaf: leaf}, nil
}

// serverTLS serves HTTP/1.1 only: WebSocket upgrades hijack the connection.
func (a *testAuthority) serverTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{a.Leaf},
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	}
}
