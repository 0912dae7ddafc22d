//go:build !linux && !darwin

package launcher

// ScrubEnviron is a no-op where agentvault does not know how the environment
// block is exposed: agentvault is built and released for Linux and macOS only.
func ScrubEnviron() error { return nil }
