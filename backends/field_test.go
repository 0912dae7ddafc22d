package backends

import (
	"strings"
	"testing"
)

func TestSplitField(t *testing.T) {
	tests := []struct {
		ref, base, field string
	}{
		{"NAME", "NAME", ""},
		{"NAME#token", "NAME", "token"},
		{"prod/db?version_stage=AWSPREVIOUS#password", "prod/db?version_stage=AWSPREVIOUS", "password"},
		{"/tmp/a#b/c.json#key", "/tmp/a#b/c.json", "key"},
		{"NAME#", "NAME#", ""},
		{"#f", "", "f"},
		{"", "", ""},
	}
	for _, tt := range tests {
		b, f := SplitField(tt.ref)
		if b != tt.base || f != tt.field {
			t.Errorf("SplitField(%q) = %q, %q; want %q, %q", tt.ref, b, f, tt.base, tt.field)
		}
	}
}

func TestExtractField(t *testing.T) {
	const secret = "s3cr3t-VALUE"
	tests := []struct {
		name, value, field, want, errHas string
	}{
		{"string", `{"token":"` + secret + `"}`, "token", secret, ""},
		{"escaped string", `{"t":"a\"b\\n"}`, "t", `a"b\n`, ""},
		{"int keeps spelling", `{"pin":1234567890123456789}`, "pin", "1234567890123456789", ""},
		{"float keeps spelling", `{"n":1.50}`, "n", "1.50", ""},
		{"true", `{"b":true}`, "b", "true", ""},
		{"false", `{"b":false}`, "b", "false", ""},
		{"whitespace around", " \n{ \"k\" : \"v\" }\n", "k", "v", ""},
		{"missing field", `{"other":"` + secret + `"}`, "token", "", `"token" not found`},
		{"null", `{"token":null}`, "token", "", `"token" is null`},
		{"object", `{"token":{"x":"` + secret + `"}}`, "token", "", "object or array"},
		{"array", `{"token":["` + secret + `"]}`, "token", "", "object or array"},
		{"not json", secret, "token", "", "not a JSON object"},
		{"json string", `"` + secret + `"`, "token", "", "not a JSON object"},
		{"json array", `["` + secret + `"]`, "token", "", "not a JSON object"},
		{"json null", `null`, "token", "", "not a JSON object"},
		{"trailing garbage", `{"token":"x"} ` + secret, "token", "", "not a JSON object"},
		{"broken json", `{"token":"` + secret, "token", "", "not a JSON object"},
		{"empty field", `{"":"x"}`, "", "", "empty field name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExtractField(tt.value, tt.field)
			if tt.errHas == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q, want error containing %q", got, tt.errHas)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %q does not contain %q", err, tt.errHas)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the value: %q", err)
			}
		})
	}
}

func TestTrimOneNewline(t *testing.T) {
	tests := []struct{ in, want string }{
		{"v", "v"},
		{"v\n", "v"},
		{"v\r\n", "v"},
		{"v\n\n", "v\n"},
		{"v\r\n\r\n", "v\r\n"},
		{"a\nb\n", "a\nb"},
		{"v\r", "v\r"},
		{" v \t\n", " v \t"},
		{"\n", ""},
	}
	for _, tt := range tests {
		if got := trimOneNewline(tt.in); got != tt.want {
			t.Errorf("trimOneNewline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
