package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// rotating is a credential source whose value can change on Refresh.
type rotating struct {
	mu      sync.Mutex
	value   string
	next    string
	calls   atomic.Int32
	changes bool
}

func (r *rotating) get() string { r.mu.Lock(); defer r.mu.Unlock(); return r.value }

func (r *rotating) refresh(ctx context.Context, name string) (bool, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.changes || r.value == r.next {
		return false, nil
	}
	r.value = r.next
	return true, nil
}

func TestRotationReplay(t *testing.T) {
	up := newTestCA(t, "upstream")
	var mu sync.Mutex
	var bodies []string
	srv, got := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer new-value-1234567" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "expired")
			return
		}
		io.WriteString(w, "ok")
	}), "api.example.test")
	for _, tc := range []struct {
		name        string
		changes     bool
		body        string
		wantStatus  int
		wantUp      int
		wantRetried bool
	}{
		{"value changed: replayed with the body", true, `{"q":1}`, 200, 2, true},
		{"value unchanged: the 401 stands", false, "", 401, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rot := &rotating{value: "old-value-1234567", next: "new-value-1234567", changes: tc.changes}
			cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: rot.get}
			h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)},
				func(p *Proxy) { p.Refresh = rot.refresh })
			before := len(got.all())
			mu.Lock()
			bodies = nil
			mu.Unlock()
			req, _ := http.NewRequest("POST", "https://api.example.test/v1", strings.NewReader(tc.body))
			res, err := h.client(testPassword, nil).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.wantStatus || len(got.all())-before != tc.wantUp || rot.calls.Load() != 1 {
				t.Fatalf("status %d, upstream got %d, refresh called %d", res.StatusCode, len(got.all())-before, rot.calls.Load())
			}
			mu.Lock()
			for _, b := range bodies {
				if b != tc.body {
					t.Errorf("upstream body %q, want %q", b, tc.body)
				}
			}
			mu.Unlock()
			rec := h.waitRecords(t, 1)[0]
			if rec.Retried != tc.wantRetried || rec.Status != tc.wantStatus {
				t.Fatalf("record %+v", rec)
			}
			if strings.Contains(rec.Warning, "value-1234567") {
				t.Fatal("warning carries a secret")
			}
		})
	}
}

// TestRotationInFlight: a request that left with the old value while another
// request's refresh brought a new one is replayed with the new value, without
// asking the backend again (which, having just answered, might be throttled).
func TestRotationInFlight(t *testing.T) {
	up := newTestCA(t, "upstream")
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv, got := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer new-value-1234567" {
			arrived <- struct{}{}
			<-release
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}), "api.example.test")
	rot := &rotating{value: "old-value-1234567", next: "new-value-1234567", changes: true}
	cred := &Credential{Name: "api", Hosts: []string{"api.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: rot.get}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, map[string]string{"api.example.test:443": hostPortOf(srv)},
		func(p *Proxy) { p.Refresh = rot.refresh })
	done := make(chan *http.Response, 1)
	go func() {
		res, err := h.client(testPassword, nil).Get("https://api.example.test/v1")
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-arrived
	rot.mu.Lock()
	rot.value = rot.next // what another request's refresh did meanwhile
	rot.mu.Unlock()
	close(release)
	res := <-done
	if res == nil {
		t.FailNow()
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || len(got.all()) != 2 || rot.calls.Load() != 0 {
		t.Fatalf("status %d, upstream got %d, refresh called %d (want 200, 2, 0)", res.StatusCode, len(got.all()), rot.calls.Load())
	}
}
