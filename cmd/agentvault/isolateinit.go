package main

import (
	"os"

	"github.com/agentvault/agentvault/launcher/isolate"
)

// A sandbox's PID 1 is this binary re-executed by isolate.Start; it must
// become the init before main parses anything (see isolate.IsInit).
func init() {
	if isolate.IsInit() {
		os.Exit(isolate.Main())
	}
}
