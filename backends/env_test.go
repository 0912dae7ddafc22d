package backends

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestEnvResolve(t *testing.T) {
	const secret = "env-SECRET-123"
	env := map[string]string{
		"TOKEN": secret,
		"EMPTY": "",
		"JSON":  `{"key":"` + secret + `","n":42}`,
		"NL":    secret + "\n",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		ref, want, errHas string
		consumed          []string
	}{
		{"TOKEN", secret, "", []string{"TOKEN"}},
		{"NL", secret + "\n", "", []string{"NL"}}, // env values are not trimmed
		{"JSON#key", secret, "", []string{"JSON"}},
		{"JSON#n", "42", "", []string{"JSON"}},
		{"JSON#missing", "", `field "missing" not found`, []string{"JSON"}},
		{"TOKEN#key", "", "not a JSON object", []string{"TOKEN"}},
		{"UNSET", "", "environment variable UNSET is not set", []string{}},
		{"EMPTY", "", "environment variable EMPTY is empty", []string{"EMPTY"}},
		{"", "", "empty environment variable name", []string{}},
		{"A=B", "", "invalid environment variable name", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			b, err := Open(Options{Name: "env", Type: "env", LookupEnv: lookup})
			if err != nil {
				t.Fatal(err)
			}
			s, err := b.Resolve(context.Background(), tt.ref)
			if got := b.ConsumedEnv(); !reflect.DeepEqual(got, tt.consumed) {
				t.Errorf("ConsumedEnv() = %q, want %q", got, tt.consumed)
			}
			if tt.errHas == "" {
				if err != nil || s.Value != tt.want {
					t.Fatalf("got %q, %v; want %q", s.Value, err, tt.want)
				}
				if s.TTL != 0 || s.LeaseID != "" || s.Renewable {
					t.Errorf("env secret has lease data: %+v", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error %v, want one containing %q", err, tt.errHas)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the value: %q", err)
			}
		})
	}
}

func TestEnvConsumedConcurrent(t *testing.T) {
	lookup := func(k string) (string, bool) { return "v-" + k, true }
	b, err := Open(Options{Type: "env", LookupEnv: lookup})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, n := range []string{"C", "A", "B", "A", "C"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Resolve(context.Background(), n); err != nil {
				t.Error(err)
			}
			_ = b.ConsumedEnv()
		}()
	}
	wg.Wait()
	if got, want := b.ConsumedEnv(), []string{"A", "B", "C"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ConsumedEnv() = %q, want %q", got, want)
	}
}

func TestEnvCanceledContext(t *testing.T) {
	b, _ := Open(Options{Type: "env", LookupEnv: func(string) (string, bool) { return "v", true }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Resolve(ctx, "X"); err == nil {
		t.Fatal("resolve with a canceled context succeeded")
	}
}
