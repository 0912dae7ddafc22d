package main

import "github.com/agentvault/agentvault/launcher/isolate"

// isolationStatus is check's line about --isolate on this machine.
func isolationStatus() string {
	sb, err := isolate.Start(isolate.Spec{Dir: "/"})
	if err != nil {
		return "not available: " + err.Error()
	}
	sb.Close()
	return "available"
}
