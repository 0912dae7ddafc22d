package vocab

import (
	"net/http"
	"testing"
)

func TestOwnedHeader(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"Host", true},
		{"content-length", true},
		{"TRANSFER-ENCODING", true},
		{"proxy-authorization", true},
		{"te", true},
		{"Connection", true},
		{"Authorization", false}, // injection rules exist to set it
		{"X-Api-Key", false},
		{"Hostname", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := OwnedHeader(tt.name); got != tt.want {
			t.Errorf("OwnedHeader(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Every hop header is owned: the proxy strips them, so a rule setting one
	// would silently do nothing.
	for _, h := range HopHeaders {
		if !OwnedHeader(h) {
			t.Errorf("hop header %s not owned", h)
		}
		// The proxy deletes them from header maps by these spellings.
		if c := http.CanonicalHeaderKey(h); c != h {
			t.Errorf("hop header %s is not spelled canonically (%s)", h, c)
		}
	}
}
