package backends

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// What the OSS dev server cannot show (namespaces are Enterprise-only, and
// Kubernetes login needs a cluster) is checked against a small TLS stand-in
// that records the requests the backend makes.

type fakeVault struct {
	srv *httptest.Server
	mu  sync.Mutex
	log []string // "METHOD path token=... ns=..." per request
	k8s map[string]any
}

func newFakeVault(t *testing.T) (*fakeVault, string) {
	f := &fakeVault{}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	// The untrusted-certificate case makes the server log a handshake error.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemCert, 0o600); err != nil {
		t.Fatal(err)
	}
	return f, ca
}

func (f *fakeVault) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.log = append(f.log, r.Method+" "+r.URL.Path+" token="+r.Header.Get("X-Vault-Token")+" ns="+r.Header.Get("X-Vault-Namespace"))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/v1/auth/k8s/login":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.k8s = body
		f.mu.Unlock()
		w.Write([]byte(`{"auth":{"client_token":"fake-login-token","lease_duration":0,"renewable":false}}`))
	case strings.HasPrefix(r.URL.Path, "/v1/sys/internal/ui/mounts/"):
		// As an old Vault: no preflight endpoint, everything is KV v1.
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[]}`))
	case r.URL.Path == "/v1/kv/app":
		w.Write([]byte(`{"data":{"token":"s3cr3t-fake"},"lease_duration":2764800}`))
	case r.URL.Path == "/v1/auth/token/revoke-self":
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[]}`))
	}
}

func (f *fakeVault) reset() {
	f.mu.Lock()
	f.log = nil
	f.mu.Unlock()
}

func (f *fakeVault) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func TestVaultNamespaceTLSKubernetes(t *testing.T) {
	f, ca := newFakeVault(t)
	jwtFile := filepath.Join(t.TempDir(), "sa-token")
	if err := os.WriteFile(jwtFile, []byte("eyJ.fake.sa\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("token with VAULT_CACERT and VAULT_NAMESPACE", func(t *testing.T) {
		b := openTestVault(t, "", map[string]string{
			"VAULT_ADDR": f.srv.URL, "VAULT_CACERT": ca, "VAULT_NAMESPACE": "team-a", "VAULT_TOKEN": "user-token",
		})
		s, err := b.Resolve(context.Background(), "kv/app")
		if err != nil || s.Value != "s3cr3t-fake" {
			t.Fatalf("Resolve = %q, %v", s.Value, err)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"GET /v1/sys/internal/ui/mounts/kv/app token=user-token ns=team-a",
			"GET /v1/kv/app token=user-token ns=team-a",
		}
		if got := f.requests(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	f.reset()
	t.Run("kubernetes login in a configured namespace", func(t *testing.T) {
		doc := "address: " + f.srv.URL + "\nca_cert: " + ca + "\nnamespace: team-b\n" +
			"auth: {method: kubernetes, path: k8s, role: agent, jwt_file: " + jwtFile + "}"
		// The process's own VAULT_NAMESPACE must not win over the config.
		b := openTestVault(t, doc, map[string]string{"VAULT_NAMESPACE": "other"})
		s, err := b.Resolve(context.Background(), "kv/app#token")
		if err != nil || s.Value != "s3cr3t-fake" {
			t.Fatalf("Resolve = %q, %v", s.Value, err)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"PUT /v1/auth/k8s/login token= ns=team-b",
			"GET /v1/sys/internal/ui/mounts/kv/app token=fake-login-token ns=team-b",
			"GET /v1/kv/app token=fake-login-token ns=team-b",
			"PUT /v1/auth/token/revoke-self token=fake-login-token ns=team-b",
		}
		if got := f.requests(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if f.k8s["role"] != "agent" || f.k8s["jwt"] != "eyJ.fake.sa" {
			t.Errorf("login body = %v, want role agent and the service account token", f.k8s)
		}
	})

	t.Run("server certificate not trusted without ca_cert", func(t *testing.T) {
		b := openTestVault(t, "address: "+f.srv.URL, map[string]string{"VAULT_TOKEN": "user-token"})
		_, err := b.Resolve(context.Background(), "kv/app")
		if err == nil || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("err = %v, want a certificate verification failure", err)
		}
	})
}

// Resolutions racing Close either finish or report the backend closed;
// none panics or takes anything Close would miss.
func TestVaultResolveRacingClose(t *testing.T) {
	f, ca := newFakeVault(t)
	b := openTestVault(t, "ca_cert: "+ca, map[string]string{"VAULT_ADDR": f.srv.URL, "VAULT_TOKEN": "user-token"})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Resolve(context.Background(), "kv/app"); err != nil {
				errs <- err
			}
		}()
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, errVaultClosed) {
			t.Errorf("Resolve racing Close: %v", err)
		}
	}
}
