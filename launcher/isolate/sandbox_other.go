//go:build !linux && !darwin

package isolate

import (
	"errors"
	"net"
	"os"

	"github.com/agentvault/agentvault/launcher"
)

// Sandbox exists only on Linux; elsewhere Start always refuses.
type Sandbox struct{}

// Start refuses: isolation needs Linux namespaces.
func Start(Spec) (*Sandbox, error) {
	return nil, &Refused{Step: "creating namespaces", Err: errors.New("not Linux"),
		Hint: "Isolation needs Linux user, PID, network and mount namespaces."}
}

// IsInit is false: no sandbox is ever started here.
func IsInit() bool { return false }

// Main is never reached off Linux.
func Main() int { return 70 }

func (*Sandbox) Listen(int) (net.Listener, error) { return nil, errors.New("isolate: not Linux") }

func (*Sandbox) Start(string, []string, []string, string, [3]*os.File) (launcher.Process, error) {
	return nil, errors.New("isolate: not Linux")
}

func (*Sandbox) Close() error { return nil }

func (*Sandbox) ListenTransparent() (net.Listener, net.Listener, error) {
	return nil, nil, errors.New("isolate: not Linux")
}
