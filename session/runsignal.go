package session

import (
	"os"
	"os/signal"
	"syscall"
)

// cleanupOnSignal removes the session directory and closes the backends
// (revoking leases) if agentvault is told to stop before the child runs, then
// exits as the signal would have; once the child runs, the launcher forwards
// signals and the normal path cleans up.
func (r *runner) cleanupOnSignal() func() {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigc:
			if r.childUp.Load() {
				return
			}
			if r.dir != nil {
				r.dir.Remove()
			}
			r.closeBackends()
			os.Exit(128 + int(sig.(syscall.Signal)))
		case <-done:
		}
	}()
	return func() { signal.Stop(sigc); close(done) }
}
