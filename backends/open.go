package backends

import (
	"fmt"
	"os"
)

// notYet are backend types that the spec names but this build does not carry
// yet; they get their own error so a config using them fails clearly instead
// of looking like a typo.
var notYet = map[string]bool{}

// Open builds the backend instance that o describes.
func Open(o Options) (Backend, error) {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Decode == nil {
		o.Decode = func(any) error { return nil }
	}
	switch o.Type {
	case "env":
		return openEnv(o)
	case "file":
		return openFile(o)
	case "exec":
		return openExec(o)
	case "vault":
		return openVault(o)
	case "aws-secretsmanager":
		return openAWS(o)
	case "infisical":
		return openInfisical(o)
	}
	if notYet[o.Type] {
		return nil, fmt.Errorf("backend type %s is not available in this build yet", o.Type)
	}
	return nil, fmt.Errorf("unknown backend type %q (known: env, file, exec, vault, aws-secretsmanager, infisical)", o.Type)
}

// noOptions rejects any configuration key for backends that take none; Decode
// is strict, so an unknown key comes back with its file:line.
func noOptions(o Options) error {
	var none struct{}
	return o.Decode(&none)
}
