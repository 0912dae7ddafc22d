package proxy

import (
	"sync/atomic"
	"testing"

	"github.com/agentvault/agentvault/redact"
)

// TestMatcherCacheFollowsRotation: a cached matcher is used only while every
// value it was built from is current; the first request after a rotation
// guards the new value (and no longer the old one).
func TestMatcherCacheFollowsRotation(t *testing.T) {
	var value atomic.Value
	value.Store("first-secret-value-1")
	creds := []*Credential{
		{Name: "a", Hosts: []string{"a.example.test"}, Secret: func() string { return value.Load().(string) }},
		{Name: "b", Hosts: []string{"b.example.test"}, Secret: staticSecret("other-secret-value-2")},
	}
	pol, err := compilePolicy(creds, Egress{}, &redact.Redactor{})
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{policy: pol}
	for _, tc := range []struct {
		name  string
		get   func() *matcher
		other string // b's value: the reflection guard's, not the leak guard's for b's host
		wantB bool
	}{
		{"reflection", p.reflectMatcher, "other-secret-value-2", true},
		{"leak to b's host", func() *matcher { return p.leakMatcher("b.example.test", 443) }, "other-secret-value-2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value.Store("first-secret-value-1")
			m1 := tc.get()
			if m1.findString("x first-secret-value-1 y") == nil {
				t.Fatal("first value not found")
			}
			if got := tc.get(); got != m1 {
				t.Fatal("unchanged values: the matcher was built again")
			}
			if (m1.findString(tc.other) != nil) != tc.wantB {
				t.Fatalf("b's value found: %v, want %v", !tc.wantB, tc.wantB)
			}
			value.Store("rotated-secret-value-3")
			m2 := tc.get()
			if m2.findString("x rotated-secret-value-3 y") == nil {
				t.Fatal("after rotation: the new value is not guarded")
			}
			if m2.findString("x first-secret-value-1 y") != nil {
				t.Fatal("after rotation: the old value is still looked for")
			}
		})
	}
}
