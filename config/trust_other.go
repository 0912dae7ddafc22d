//go:build !unix

package config

import "errors"

// Release builds are Unix-only. Elsewhere nothing can be trusted, so a
// discovered project config is refused and -c or $AGENTVAULT_CONFIG is the
// way to name one.
var errTrustUnsupported = errors.New("trusting project configs needs a Unix system; name the config with -c instead")

func (trustStore) read() ([]byte, error) { return nil, errTrustUnsupported }

func (trustStore) update(func([]byte) ([]byte, error)) error { return errTrustUnsupported }
