package broker

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"testing"
)

func TestLeaks(t *testing.T) {
	secret := "sk-ant-ort01-" + randomB64(60)
	jwtWith := func(s string) string {
		return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"x":"`+s+`"}`)) + ".sig"
	}
	cases := []struct {
		name string
		s    string
		want bool
	}{
		{"as is", "token " + secret, true},
		{"percent-encoded", url.QueryEscape("a=" + secret + "&b=1"), true},
		{"base64", base64.StdEncoding.EncodeToString([]byte(secret)), true},
		{"base64url inside text", "x:" + base64.RawURLEncoding.EncodeToString([]byte("pre "+secret)) + ";", true},
		{"in a JWT's claims", jwtWith(secret), true},
		{"base64 inside a JWT's claims", jwtWith(base64.StdEncoding.EncodeToString([]byte(secret))), true},
		{"a different token", "sk-ant-ort01-" + randomB64(60), false},
		{"a prefix of it only", secret[:20], false},
		// Hex is not decoded: no token endpoint answers in hex.
		{"hex", hex.EncodeToString([]byte(secret)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := leaks(tc.s, []string{secret}); got != tc.want {
				t.Fatalf("leaks = %v, want %v", got, tc.want)
			}
		})
	}
	if leaks("short", []string{"short"}) {
		t.Error("a value below minSecret was looked for")
	}
}
