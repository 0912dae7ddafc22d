package backends

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// uaEnv is the environment that carries the stand-in's client credentials.
func (f *fakeInfisical) uaEnv() map[string]string {
	return map[string]string{
		"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID":     f.clientID,
		"INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET": f.clientSecret,
	}
}

func (f *fakeInfisical) config(extra string) string {
	return fmt.Sprintf("site_url: %s\nproject_id: %s\nenvironment: %s\n%s", f.srv.URL, f.projectID, f.environment, extra)
}

// openInfisicalTest opens an infisical backend from doc and env and closes
// it when the test ends.
func openInfisicalTest(t *testing.T, doc string, env map[string]string) *infisicalBackend {
	t.Helper()
	b, err := Open(Options{Name: "infisical", Type: "infisical", Decode: yamlDecode(t, doc), LookupEnv: mapEnv(env)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b.(*infisicalBackend)
}

// noValueIn fails if err's text holds any of values (or their start).
func noValueIn(t *testing.T, err error, values ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, v := range values {
		if v == "" {
			continue
		}
		if strings.Contains(err.Error(), v) || (len(v) >= 12 && strings.Contains(err.Error(), v[:12])) {
			t.Errorf("error reveals a secret value: %v", err)
		}
	}
}

func TestInfisicalResolve(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/", "API_KEY", "root-value-1")
	f.put("/nested/path", "DB", `{"user":"app","password":"pw-2","port":5432,"tls":true}`)
	f.put("/nested/path", "NOTJSON", "plain-3")
	b := openInfisicalTest(t, f.config(""), f.uaEnv())
	if n := f.requests(); n != 0 {
		t.Fatalf("Open sent %d requests; the login must wait for the first Resolve", n)
	}

	tests := []struct {
		ref, want, wantPath, errHas string
	}{
		{"API_KEY", "root-value-1", "/", ""},
		{"/API_KEY", "root-value-1", "/", ""},
		{"/nested/path/DB#password", "pw-2", "/nested/path", ""},
		{"nested/path/DB#user", "app", "/nested/path", ""},
		{"/nested/path/DB#port", "5432", "/nested/path", ""},
		{"/nested/path/DB#tls", "true", "/nested/path", ""},
		{"/nested/path/DB", `{"user":"app","password":"pw-2","port":5432,"tls":true}`, "/nested/path", ""},
		{"/nested/path/DB#missing", "", "/nested/path", `infisical secret /nested/path/DB (environment prod): field "missing" not found`},
		{"/nested/path/NOTJSON#f", "", "/nested/path", `field "f" requested but the value is not a JSON object`},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			s, err := b.Resolve(context.Background(), tt.ref)
			q := f.lastQuery()
			if got := q.Get("secretPath"); got != tt.wantPath {
				t.Errorf("secretPath sent = %q, want %q", got, tt.wantPath)
			}
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %v, want one containing %q", err, tt.errHas)
				}
				noValueIn(t, err, "pw-2", "plain-3", f.clientSecret)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Value != tt.want || s.LeaseID != "" || s.TTL != 0 {
				t.Errorf("got %+v, want value %q and no lease", s, tt.want)
			}
		})
	}
	q := f.lastQuery()
	for k, want := range map[string]string{"workspaceId": f.projectID, "environment": "prod",
		"expandSecretReferences": "true", "include_imports": "true", "type": "shared"} {
		if got := q.Get(k); got != want {
			t.Errorf("query %s = %q, want %q", k, got, want)
		}
	}
	if logins, bad, _, renews, _ := f.counts(); logins != 1 || bad != 0 || renews != 0 {
		t.Errorf("%d logins (%d refused, %d renewals) for %d reads, want exactly one login", logins, bad, renews, len(tests))
	}
}

func TestInfisicalRefErrors(t *testing.T) {
	tests := []struct{ ref, errHas string }{
		{"", "names no secret"},
		{"/", "names no secret"},
		{"/dir/", "names no secret"},
		{"a//B", "empty, '.' or '..' segment"},
		{"/a/../B", "empty, '.' or '..' segment"},
		{"./B", "empty, '.' or '..' segment"},
		{"B?version=2", "query parameters are not supported"},
		{"MY KEY", "space or control character"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			_, err := parseInfisicalRef(tt.ref)
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("parseInfisicalRef(%q) error %v, want one containing %q", tt.ref, err, tt.errHas)
			}
		})
	}
	r, err := parseInfisicalRef("team/ci/KEY#f")
	if err != nil || r != (infisicalRef{path: "/team/ci", name: "KEY", field: "f"}) || r.String() != "/team/ci/KEY" {
		t.Errorf("got %+v (%s), %v", r, r, err)
	}
}

func TestInfisicalMissingSecret(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/nested", "OTHER", "other-value")
	b := openInfisicalTest(t, f.config(""), f.uaEnv())
	_, err := b.Resolve(context.Background(), "/nested/MISSING")
	want := "infisical secret /nested/MISSING (environment prod): not found: Secret with name 'MISSING' not found (HTTP 404)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	noValueIn(t, err, "other-value", f.clientSecret, f.issued()[0])
}

func TestInfisicalDenied(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/locked", "K", "locked-value")
	f.denied["/locked"] = true
	b := openInfisicalTest(t, f.config(""), f.uaEnv())
	_, err := b.Resolve(context.Background(), "/locked/K")
	want := "infisical secret /locked/K (environment prod): access denied: You are not allowed to read secrets in this folder (HTTP 403)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	noValueIn(t, err, "locked-value", f.clientSecret)
}

func TestInfisicalBadClientSecret(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/", "K", "value-k")
	env := f.uaEnv()
	wrong := "wrong-client-secret-" + randHex(t)
	env["INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET"] = wrong
	b := openInfisicalTest(t, f.config(""), env)
	_, err := b.Resolve(context.Background(), "K")
	want := fmt.Sprintf("infisical secret /K (environment prod): universal-auth login (client id %s) at %s: "+
		"Infisical rejected the credentials: Invalid credentials (HTTP 401)", f.clientID, f.srv.URL)
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	noValueIn(t, err, wrong, f.clientSecret, "value-k")
	if logins, bad, _, _, _ := f.counts(); logins != 0 || bad != 1 {
		t.Errorf("stand-in saw %d logins and %d refused, want 0 and 1 (no retry of a 401)", logins, bad)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("Close after a failed login: %v", err)
	}
}

// A message from Infisical that echoes a credential is masked.
func TestInfisicalMasksEchoedCredential(t *testing.T) {
	secret := "echoed-client-secret-" + randHex(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fakeFail(w, "req-1", http.StatusUnprocessableEntity, "ValidationFailure",
			`[{"path":["clientSecret"],"received":"`+secret+`"}]`)
	}))
	t.Cleanup(srv.Close)
	doc := fmt.Sprintf("site_url: %s\nproject_id: p\nenvironment: dev\nauth: {client_id: id}\n", srv.URL)
	b := openInfisicalTest(t, doc, map[string]string{"INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET": secret})
	_, err := b.Resolve(context.Background(), "K")
	if err == nil || !strings.Contains(err.Error(), "HTTP 422") || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("error %v, want the 422 with the secret redacted", err)
	}
	noValueIn(t, err, secret)
}

func TestInfisicalCloseRevokes(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/", "K", "value-k")
	b := openInfisicalTest(t, f.config(""), f.uaEnv())
	for range 3 {
		if _, err := b.Resolve(context.Background(), "K"); err != nil {
			t.Fatal(err)
		}
	}
	toks := f.issued()
	if len(toks) != 1 || len(f.live()) != 1 {
		t.Fatalf("%d tokens issued, %d live; want 1 and 1", len(toks), len(f.live()))
	}
	// An already cancelled context must not stop the revocation.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if by := f.revokedBy(toks[0]); by != "client" {
		t.Errorf("token revoked by %q, want the client's revoke call", by)
	}
	if live := f.live(); len(live) != 0 {
		t.Errorf("%d tokens still live after Close", len(live))
	}
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, revokes, _, _ := f.counts(); revokes != 1 {
		t.Errorf("%d revoke calls, want 1", revokes)
	}
	if _, err := b.Resolve(context.Background(), "K"); !errors.Is(err, errInfisicalClosed) {
		t.Errorf("Resolve after Close: %v, want %v", err, errInfisicalClosed)
	}
}

func TestInfisicalCloseWithoutLogin(t *testing.T) {
	f := newFakeInfisical(t)
	b := openInfisicalTest(t, f.config(""), f.uaEnv())
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.requests(); n != 0 {
		t.Errorf("Close of an unused backend sent %d requests", n)
	}
}

// Close is bounded by its context's deadline when Infisical does not answer.
func TestInfisicalCloseBounded(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/", "K", "v")
	b := openInfisicalTest(t, f.config(""), f.uaEnv())
	if _, err := b.Resolve(context.Background(), "K"); err != nil {
		t.Fatal(err)
	}
	f.srv.Close() // gone: the revoke cannot be delivered
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s with a 300ms deadline", d)
	}
	if err == nil || !strings.Contains(err.Error(), "revoking the access token") {
		t.Errorf("Close error %v, want one about the revocation", err)
	}
	noValueIn(t, err, f.issued()[0], f.clientSecret)
}

// With AutoTokenRefresh off, the backend itself replaces a token that is
// about to expire, and never sends an expired one.
func TestInfisicalTokenExpiry(t *testing.T) {
	f := newFakeInfisical(t)
	f.ttl = 1
	f.put("/", "K", "v")
	b := openInfisicalTest(t, f.config(""), f.uaEnv())
	if _, err := b.Resolve(context.Background(), "K"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := b.Resolve(context.Background(), "K"); err != nil {
		t.Fatal(err)
	}
	logins, _, _, renews, expired := f.counts()
	if logins != 2 || expired != 0 || renews != 0 {
		t.Errorf("logins %d, expired-token uses %d, renewals %d; want 2, 0, 0", logins, expired, renews)
	}
	// The expired first token is not revoked at Close; the second is.
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	toks := f.issued()
	if f.revokedBy(toks[0]) != "" || f.revokedBy(toks[1]) != "client" {
		t.Errorf("revoked: first %q, second %q; want only the live second one", f.revokedBy(toks[0]), f.revokedBy(toks[1]))
	}
}

// A token Infisical refuses before its expiry (revoked by an admin) is
// replaced by a new login and the read tried once more.
func TestInfisicalReloginOn401(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/", "K", "v")
	b := openInfisicalTest(t, f.config(""), f.uaEnv())
	if _, err := b.Resolve(context.Background(), "K"); err != nil {
		t.Fatal(err)
	}
	f.revokeAll()
	s, err := b.Resolve(context.Background(), "K")
	if err != nil || s.Value != "v" {
		t.Fatalf("got %q, %v after a server-side revocation", s.Value, err)
	}
	if logins, _, _, _, _ := f.counts(); logins != 2 {
		t.Errorf("%d logins, want 2", logins)
	}
}

func TestInfisicalConcurrentResolve(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/a", "K", "v")
	b := openInfisicalTest(t, f.config(""), f.uaEnv())
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := b.Resolve(context.Background(), "/a/K")
			if err == nil && s.Value != "v" {
				err = fmt.Errorf("value %q", s.Value)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if logins, _, _, _, _ := f.counts(); logins != 1 {
		t.Errorf("%d logins for concurrent reads, want 1", logins)
	}
}

func TestInfisicalUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	secret := "unreachable-secret-" + randHex(t)
	doc := fmt.Sprintf("site_url: http://%s\nproject_id: p\nenvironment: dev\nauth: {client_id: id, client_secret: %s}\n", addr, secret)
	b := openInfisicalTest(t, doc, nil)
	start := time.Now()
	_, err = b.Resolve(context.Background(), "/x/K")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Resolve took %s against a closed port", d)
	}
	want := fmt.Sprintf("infisical secret /x/K (environment dev): universal-auth login (client id id) at http://%s: cannot reach Infisical at http://%s: dial tcp %s: connect: connection refused", addr, addr, addr)
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	noValueIn(t, err, secret)
}

// A server that accepts and never answers is given up on after timeout.
func TestInfisicalNoAnswer(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/", "K", "v")
	b := openInfisicalTest(t, f.config("timeout: 300ms\n"), f.uaEnv())
	if _, err := b.Resolve(context.Background(), "K"); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.hang = make(chan struct{})
	f.mu.Unlock()
	start := time.Now()
	_, err := b.Resolve(context.Background(), "K")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Resolve took %s with a 300ms timeout", d)
	}
	want := fmt.Sprintf("infisical secret /K (environment prod): Infisical at %s gave no answer within 300ms", f.srv.URL)
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	// The caller's own cancellation is reported as such.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Resolve(ctx, "K"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context's deadline", err)
	}
}

// The SDK's HTTP library logs failed attempts on stderr when it retries;
// the backend keeps agentvault's output to its own one-line errors.
func TestInfisicalQuietOnFailure(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	restore := sync.OnceFunc(func() { os.Stderr = saved; w.Close() })
	defer restore()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	doc := fmt.Sprintf("site_url: http://%s\nproject_id: p\nenvironment: dev\nauth: {client_id: id, client_secret: s3cret}\n", addr)
	b := openInfisicalTest(t, doc, nil)
	if _, err := b.Resolve(context.Background(), "K"); err == nil {
		t.Fatal("Resolve against a closed port succeeded")
	}
	restore()
	out := make([]byte, 4096)
	r.SetReadDeadline(time.Now().Add(time.Second))
	n, _ := r.Read(out)
	if n > 0 {
		t.Errorf("the SDK wrote to stderr: %q", out[:n])
	}
}

func TestInfisicalTLS(t *testing.T) {
	f := &fakeInfisical{t: t, clientID: "cid", clientSecret: "tls-client-secret", projectID: "p", environment: "prod",
		ttl: 3600, maxTTL: 3600, secrets: map[string]map[string]string{"/": {"K": "tls-value"}},
		denied: map[string]bool{}, userTok: map[string]bool{}, tokens: map[string]*fakeToken{}}
	f.srv = httptest.NewTLSServer(f)
	t.Cleanup(f.srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	b := openInfisicalTest(t, f.config("ca_cert: "+ca+"\n"), f.uaEnv())
	if s, err := b.Resolve(context.Background(), "K"); err != nil || s.Value != "tls-value" {
		t.Fatalf("with ca_cert: %q, %v", s.Value, err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	b = openInfisicalTest(t, f.config(""), f.uaEnv())
	_, err := b.Resolve(context.Background(), "K")
	if err == nil || !strings.Contains(err.Error(), "TLS with "+f.srv.URL+" failed") || !strings.Contains(err.Error(), "set ca_cert?") {
		t.Fatalf("without ca_cert: %v, want a TLS verification error", err)
	}
	noValueIn(t, err, f.clientSecret)
}

func TestInfisicalClientSecretFile(t *testing.T) {
	f := newFakeInfisical(t)
	f.orgSlug = "sub-org"
	f.put("/", "K", "v")
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(f.clientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := f.config(fmt.Sprintf("auth:\n  method: universal-auth\n  client_id: %s\n  client_secret_file: %s\n  organization_slug: sub-org\n", f.clientID, file))
	b := openInfisicalTest(t, doc, nil)
	if s, err := b.Resolve(context.Background(), "K"); err != nil || s.Value != "v" {
		t.Fatalf("got %q, %v", s.Value, err)
	}
	if got := b.ConsumedEnv(); len(got) != 0 {
		t.Errorf("ConsumedEnv = %v with everything in the config, want none", got)
	}

	// The file is read at login: a missing one is reported then, by name.
	os.Remove(file)
	b = openInfisicalTest(t, doc, nil)
	_, err := b.Resolve(context.Background(), "K")
	if err == nil || !strings.Contains(err.Error(), "auth.client_secret_file") || !strings.Contains(err.Error(), file) {
		t.Fatalf("error %v, want one naming auth.client_secret_file and the file", err)
	}
}

func TestInfisicalAccessToken(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/", "K", "v")
	tok := "user-access-token-" + randHex(t)
	f.addUserToken(tok)
	b := openInfisicalTest(t, f.config("auth: {method: access-token}\n"), map[string]string{"INFISICAL_TOKEN": tok})
	if s, err := b.Resolve(context.Background(), "K"); err != nil || s.Value != "v" {
		t.Fatalf("got %q, %v", s.Value, err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if logins, _, revokes, _, _ := f.counts(); logins != 0 || revokes != 0 {
		t.Errorf("%d logins and %d revocations with the user's token, want none", logins, revokes)
	}

	// A refused user token is reported, not retried.
	f.revokeAll()
	b = openInfisicalTest(t, f.config("auth: {method: access-token}\n"), map[string]string{"INFISICAL_TOKEN": tok})
	_, err := b.Resolve(context.Background(), "K")
	if err == nil || !strings.Contains(err.Error(), "Infisical rejected the credentials") || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("error %v, want a 401", err)
	}
	noValueIn(t, err, tok)
}

func TestInfisicalConsumedEnv(t *testing.T) {
	all := map[string]string{
		"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID":     "id",
		"INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET": "s",
		"INFISICAL_TOKEN":                        "t",
		"INFISICAL_AUTH_ORGANIZATION_SLUG":       "org",
		"INFISICAL_API_URL":                      "https://x/api",
		"HOME":                                   "/home/u",
	}
	base := "project_id: p\nenvironment: dev\n"
	tests := []struct {
		name, doc string
		env       map[string]string
		want      []string
	}{
		{"universal-auth from env", base, all, []string{"INFISICAL_AUTH_ORGANIZATION_SLUG", "INFISICAL_TOKEN",
			"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID", "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET"}},
		{"slug configured", base + "auth: {organization_slug: o}\n", all, []string{"INFISICAL_TOKEN",
			"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID", "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET"}},
		{"access-token", base + "auth: {method: access-token}\n", all, []string{"INFISICAL_TOKEN",
			"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID", "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET"}},
		{"only what is set", base, map[string]string{"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID": "id",
			"INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET": "s"}, []string{"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID", "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := openInfisicalTest(t, tt.doc, tt.env)
			if got := b.ConsumedEnv(); !slices.Equal(got, tt.want) {
				t.Errorf("ConsumedEnv = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInfisicalConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ua := map[string]string{"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID": "id", "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET": "s"}
	base := "project_id: p\nenvironment: dev\n"
	tests := []struct {
		doc    string
		env    map[string]string
		errHas string
	}{
		{"environment: dev\n", ua, `backend "infisical": project_id is required`},
		{"project_id: p\n", ua, "environment is required"},
		{base + "site_url: app.infisical.com\n", ua, "site_url must be an http:// or https:// URL"},
		{base + "site_url: ftp://x\n", ua, "site_url must be an http:// or https:// URL"},
		{base + "site_url: https://x/?a=b\n", ua, "site_url must be an http:// or https:// URL"},
		{base + "timeout: -1s\n", ua, "timeout must not be negative"},
		{base + "timeout: soon\n", ua, "cannot unmarshal"},
		{base + "project: p\n", ua, "field project not found"},
		{base + "auth: {method: oidc}\n", ua, `auth.method "oidc" is not supported`},
		{base + "auth: {client_secret: a, client_secret_file: /b}\n", ua, "set client_secret or client_secret_file, not both"},
		{base + "auth: {token_file: /t}\n", ua, "auth.token_file does not apply to auth method universal-auth"},
		{base + "auth: {method: access-token, client_id: x}\n", nil, "auth.client_id does not apply to auth method access-token"},
		{base + "auth: {method: access-token}\n", ua, "auth method access-token needs token_file or $INFISICAL_TOKEN"},
		{base, nil, "needs client_id or $INFISICAL_UNIVERSAL_AUTH_CLIENT_ID"},
		{base, map[string]string{"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID": "id"}, "needs client_secret, client_secret_file or $INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET"},
		{base + "auth: {secret: x}\n", ua, "field secret not found"},
		{base + "ca_cert: " + filepath.Join(dir, "absent.pem") + "\n", ua, "ca_cert: "},
		{base + "ca_cert: " + notPEM + "\n", ua, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.errHas, func(t *testing.T) {
			_, err := Open(Options{Name: "infisical", Type: "infisical", Decode: yamlDecode(t, tt.doc), LookupEnv: mapEnv(tt.env)})
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error %v, want one containing %q", err, tt.errHas)
			}
			noValueIn(t, err, "hello")
		})
	}
}

func TestInfisicalEmptyValue(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/", "EMPTY", "")
	b := openInfisicalTest(t, f.config(""), f.uaEnv())
	_, err := b.Resolve(context.Background(), "EMPTY")
	if err == nil || err.Error() != "infisical secret /EMPTY (environment prod) is empty" {
		t.Fatalf("error %v", err)
	}
}

// A wrong project or environment comes back as Infisical words it.
func TestInfisicalWrongEnvironment(t *testing.T) {
	f := newFakeInfisical(t)
	f.put("/", "K", "v")
	doc := strings.Replace(f.config(""), "environment: prod", "environment: staging", 1)
	b := openInfisicalTest(t, doc, f.uaEnv())
	_, err := b.Resolve(context.Background(), "K")
	want := "infisical secret /K (environment staging): not found: Environment with slug 'staging' not found (HTTP 404)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
}

// An answer that does not decode is reported without the decoder's text,
// which can quote the body, and so the secret in it.
func TestInfisicalUnreadableAnswer(t *testing.T) {
	leak := "leaky-value-" + randHex(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v1/auth/universal-auth/login" {
			fmt.Fprint(w, `{"accessToken":"tok-unreadable","expiresIn":600,"accessTokenMaxTTL":600,"tokenType":"Bearer"}`)
			return
		}
		fmt.Fprint(w, `{"secret":{"secretValue":"`+leak+`"x}}`)
	}))
	t.Cleanup(srv.Close)
	doc := fmt.Sprintf("site_url: %s\nproject_id: p\nenvironment: dev\nauth: {client_id: id, client_secret: cs}\n", srv.URL)
	b := openInfisicalTest(t, doc, nil)
	_, err := b.Resolve(context.Background(), "K")
	want := fmt.Sprintf("infisical secret /K (environment dev): the answer of Infisical at %s could not be read", srv.URL)
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	noValueIn(t, err, leak, "tok-unreadable")
}
