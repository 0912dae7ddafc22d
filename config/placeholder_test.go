package config

import "testing"

func TestValidPlaceholder(t *testing.T) {
	for _, ok := range []string{"abcdefghijkl", "sk-ant-api03-x.y~z_", "agentvault-ph-0123456789abcdef"} {
		if err := ValidPlaceholder(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "short", "has space inside", "slash/inside/xx", "percent%20xxxx", "ümlautsümlauts", string(make([]byte, 513))} {
		if err := ValidPlaceholder(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
