package proxy

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

func TestBlockedAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1":        "loopback",
		"::1":              "loopback",
		"::ffff:127.0.0.1": "loopback",
		"169.254.169.254":  "link-local",
		"fe80::1":          "link-local",
		"0.0.0.0":          "unspecified",
		"fd00:ec2::254":    "cloud metadata",
		"100.100.100.200":  "cloud metadata",
		"10.1.2.3":         "private",
		"172.16.0.1":       "private",
		"192.168.1.1":      "private",
		"fc00::1":          "private",
		"100.64.0.1":       "private",
		"93.184.216.34":    "",
		"2606:4700::1":     "",
	} {
		if got := blockedAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}

func TestDialTargetRules(t *testing.T) {
	d := &dialer{connectTo: map[string]string{}, explicit: map[string]bool{"10.0.0.9": true}}
	for _, tc := range []struct {
		host    string
		refused bool
	}{
		{"127.0.0.1", true},
		{"169.254.169.254", true},
		{"10.0.0.1", true},
		{"localhost", true},
	} {
		_, err := d.dialTarget(context.Background(), tc.host, 9)
		if got := errors.Is(err, errRefusedAddress); got != tc.refused {
			t.Errorf("%s: refused=%v err=%v", tc.host, got, err)
		}
	}
}

func TestParseConnectTo(t *testing.T) {
	for _, tc := range []struct{ in, from, to string }{
		{"api.example.test:443:127.0.0.1:8443", "api.example.test:443", "127.0.0.1:8443"},
		{"API.Example.test:443:[::1]:9", "api.example.test:443", "[::1]:9"},
	} {
		from, to, err := ParseConnectTo(tc.in)
		if err != nil || from != tc.from || to != tc.to {
			t.Errorf("%s: %q %q %v", tc.in, from, to, err)
		}
	}
	for _, bad := range []string{"", "host", "host:443", "host:443:addr", ":443:a:1", "h:x:a:1", "h:443::1"} {
		if _, _, err := ParseConnectTo(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
