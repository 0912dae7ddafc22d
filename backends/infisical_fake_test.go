package backends

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeInfisical is a stand-in for the parts of Infisical's HTTP API that
// go-sdk v0.8.0 uses for universal-auth and secret reads, following the
// documented wire format (docs/development/testing.md): paths, methods,
// JSON field names, query parameters, Bearer auth and the error body
// {reqId, statusCode, message, error}. It checks everything the client sends
// and fails the test on anything a correct client would not send; a wrong
// but well-formed request (a bad client secret, a missing secret) gets the
// answer Infisical gives.
type fakeInfisical struct {
	t   *testing.T
	srv *httptest.Server

	clientID, clientSecret string
	orgSlug                string // expected organizationSlug; "" = must be absent
	projectID, environment string
	ttl, maxTTL            int64 // expiresIn and accessTokenMaxTTL, seconds

	mu       sync.Mutex
	secrets  map[string]map[string]string // folder path -> key -> value
	denied   map[string]bool              // folder paths answering 403
	userTok  map[string]bool              // tokens issued outside the stand-in (access-token method)
	tokens   map[string]*fakeToken
	order    []string // tokens in issue order
	reqN     int
	logins   int // successful
	badLogin int // refused for wrong credentials
	revokes  int
	renews   int
	expired  int // requests with a token past its expiry
	queries  []url.Values
	hang     chan struct{} // when set, secret reads wait for it to close
}

type fakeToken struct {
	expires time.Time
	revoked string // "", "client" (revoke endpoint) or "server" (revokeAll)
}

func newFakeInfisical(t *testing.T) *fakeInfisical {
	t.Helper()
	f := &fakeInfisical{
		t:            t,
		clientID:     "client-id-1234",
		clientSecret: "ua-client-secret-" + randHex(t),
		projectID:    "proj-6f1c",
		environment:  "prod",
		ttl:          3600,
		maxTTL:       7200,
		secrets:      map[string]map[string]string{},
		denied:       map[string]bool{},
		userTok:      map[string]bool{},
		tokens:       map[string]*fakeToken{},
	}
	f.srv = httptest.NewServer(f) // listens on 127.0.0.1
	t.Cleanup(func() {
		f.mu.Lock()
		if f.hang != nil {
			select {
			case <-f.hang:
			default:
				close(f.hang)
			}
		}
		f.mu.Unlock()
		f.srv.Close()
	})
	return f
}

func randHex(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func (f *fakeInfisical) put(path, key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secrets[path] == nil {
		f.secrets[path] = map[string]string{}
	}
	f.secrets[path][key] = value
}

// addUserToken registers a token that a user obtained elsewhere.
func (f *fakeInfisical) addUserToken(tok string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.userTok[tok] = true
	f.tokens[tok] = &fakeToken{}
}

// revokeAll revokes every token server-side, as an admin would.
func (f *fakeInfisical) revokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tk := range f.tokens {
		if tk.revoked == "" {
			tk.revoked = "server"
		}
	}
}

// live lists the issued tokens that are neither revoked nor expired.
func (f *fakeInfisical) live() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, tok := range f.order {
		tk := f.tokens[tok]
		if tk.revoked == "" && time.Now().Before(tk.expires) {
			out = append(out, tok)
		}
	}
	return out
}

// issued lists every token the stand-in handed out by login, in order.
func (f *fakeInfisical) issued() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.order...)
}

func (f *fakeInfisical) revokedBy(tok string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if tk := f.tokens[tok]; tk != nil {
		return tk.revoked
	}
	return ""
}

func (f *fakeInfisical) counts() (logins, badLogins, revokes, renews, expired int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins, f.badLogin, f.revokes, f.renews, f.expired
}

func (f *fakeInfisical) lastQuery() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return nil
	}
	return f.queries[len(f.queries)-1]
}

func (f *fakeInfisical) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqN
}

// --- wire format ---

// apiError is the error body of every Infisical API failure.
type fakeAPIError struct {
	ReqID      string `json:"reqId"`
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
	Error      string `json:"error"`
}

func fakeWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fakeFail(w http.ResponseWriter, reqID string, status int, errName, msg string) {
	fakeWriteJSON(w, status, fakeAPIError{ReqID: reqID, StatusCode: status, Message: msg, Error: errName})
}

// unexpected fails the test and answers 400 as Infisical's validation does.
func (f *fakeInfisical) unexpected(w http.ResponseWriter, reqID, format string, a ...any) {
	f.t.Errorf("Infisical stand-in: "+format, a...)
	fakeFail(w, reqID, http.StatusBadRequest, "ValidationFailure", "unexpected request")
}

func (f *fakeInfisical) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqN++
	reqID := fmt.Sprintf("req-%d", f.reqN)
	f.mu.Unlock()
	if ua := r.Header.Get("User-Agent"); ua != "infisical-go-sdk" {
		f.unexpected(w, reqID, "%s %s: User-Agent %q, want the SDK's infisical-go-sdk", r.Method, r.URL.Path, ua)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/api/v1/auth/universal-auth/login":
		f.login(w, r, reqID)
	case p == "/api/v1/auth/token/revoke":
		f.revoke(w, r, reqID)
	case p == "/api/v1/auth/token/renew":
		f.renew(w, r, reqID)
	case strings.HasPrefix(p, "/api/v3/secrets/raw/"):
		f.getSecret(w, r, reqID, strings.TrimPrefix(p, "/api/v3/secrets/raw/"))
	default:
		f.t.Errorf("Infisical stand-in: request to an unknown route %s %s", r.Method, p)
		// Fastify's answer for an unknown route.
		fakeWriteJSON(w, http.StatusNotFound, map[string]any{
			"message": fmt.Sprintf("Route %s:%s not found", r.Method, p), "error": "Not Found", "statusCode": 404})
	}
}

// decodeBody reads a POST's JSON body strictly into v.
func (f *fakeInfisical) decodeBody(w http.ResponseWriter, r *http.Request, reqID string, v any) bool {
	if r.Method != http.MethodPost {
		f.unexpected(w, reqID, "%s %s, want POST", r.Method, r.URL.Path)
		return false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		f.unexpected(w, reqID, "POST %s with Content-Type %q, want application/json", r.URL.Path, r.Header.Get("Content-Type"))
		return false
	}
	if r.URL.RawQuery != "" {
		f.unexpected(w, reqID, "POST %s with a query %q", r.URL.Path, r.URL.RawQuery)
		return false
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		f.unexpected(w, reqID, "POST %s: reading the body: %v", r.URL.Path, err)
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		f.unexpected(w, reqID, "POST %s: body is not the documented JSON: %v", r.URL.Path, err)
		return false
	}
	return true
}

func (f *fakeInfisical) login(w http.ResponseWriter, r *http.Request, reqID string) {
	var body struct {
		ClientID         *string `json:"clientId"`
		ClientSecret     *string `json:"clientSecret"`
		OrganizationSlug *string `json:"organizationSlug"`
	}
	if !f.decodeBody(w, r, reqID, &body) {
		return
	}
	// The SDK logs in on a copy of its client with the token cleared.
	if a := r.Header.Get("Authorization"); a != "" {
		f.unexpected(w, reqID, "login carries an Authorization header")
		return
	}
	if body.ClientID == nil || body.ClientSecret == nil || *body.ClientID == "" || *body.ClientSecret == "" {
		f.unexpected(w, reqID, "login without clientId or clientSecret")
		return
	}
	switch {
	case f.orgSlug == "" && body.OrganizationSlug != nil:
		f.unexpected(w, reqID, "login sent organizationSlug %q, none configured", *body.OrganizationSlug)
		return
	case f.orgSlug != "" && (body.OrganizationSlug == nil || *body.OrganizationSlug != f.orgSlug):
		f.unexpected(w, reqID, "login did not send organizationSlug %q", f.orgSlug)
		return
	}
	if *body.ClientID != f.clientID || *body.ClientSecret != f.clientSecret {
		f.mu.Lock()
		f.badLogin++
		f.mu.Unlock()
		fakeFail(w, reqID, http.StatusUnauthorized, "UnauthorizedError", "Invalid credentials")
		return
	}
	tok := "fake-access-token-" + randHex(f.t)
	f.mu.Lock()
	f.logins++
	f.tokens[tok] = &fakeToken{expires: time.Now().Add(time.Duration(f.ttl) * time.Second)}
	f.order = append(f.order, tok)
	f.mu.Unlock()
	fakeWriteJSON(w, http.StatusOK, map[string]any{
		"accessToken": tok, "expiresIn": f.ttl, "accessTokenMaxTTL": f.maxTTL, "tokenType": "Bearer"})
}

func (f *fakeInfisical) revoke(w http.ResponseWriter, r *http.Request, reqID string) {
	var body struct {
		AccessToken *string `json:"accessToken"`
	}
	if !f.decodeBody(w, r, reqID, &body) {
		return
	}
	if body.AccessToken == nil || *body.AccessToken == "" {
		f.unexpected(w, reqID, "revoke without accessToken")
		return
	}
	tok := *body.AccessToken
	// The SDK sends the revoke on its authenticated client.
	if a := r.Header.Get("Authorization"); a != "Bearer "+tok {
		f.unexpected(w, reqID, "revoke's Authorization is not Bearer <the token being revoked>")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	tk := f.tokens[tok]
	switch {
	case tk == nil:
		f.t.Errorf("Infisical stand-in: revoke of a token it never issued")
		fakeFail(w, reqID, http.StatusUnauthorized, "UnauthorizedError", "Invalid token")
		return
	case f.userTok[tok]:
		f.t.Errorf("Infisical stand-in: the client revoked the user's own access token")
	case tk.revoked == "client":
		f.t.Errorf("Infisical stand-in: the client revoked the same token twice")
	}
	f.revokes++
	tk.revoked = "client"
	fakeWriteJSON(w, http.StatusOK, map[string]string{"message": "Successfully revoked access token"})
}

func (f *fakeInfisical) renew(w http.ResponseWriter, r *http.Request, reqID string) {
	var body struct {
		AccessToken *string `json:"accessToken"`
	}
	if !f.decodeBody(w, r, reqID, &body) {
		return
	}
	if body.AccessToken == nil || r.Header.Get("Authorization") != "" {
		f.unexpected(w, reqID, "renew without accessToken or with an Authorization header")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	tk := f.tokens[*body.AccessToken]
	if tk == nil || tk.revoked != "" || time.Now().After(tk.expires) {
		fakeFail(w, reqID, http.StatusUnauthorized, "UnauthorizedError", "Invalid token")
		return
	}
	f.renews++
	tk.expires = time.Now().Add(time.Duration(f.ttl) * time.Second)
	fakeWriteJSON(w, http.StatusOK, map[string]any{
		"accessToken": *body.AccessToken, "expiresIn": f.ttl, "accessTokenMaxTTL": f.maxTTL, "tokenType": "Bearer"})
}

// secretQuery are the query parameters of GET /api/v3/secrets/raw/{key}:
// required ones true, optional false.
var secretQuery = map[string]bool{
	"workspaceId": true, "environment": true, "secretPath": true,
	"expandSecretReferences": true, "include_imports": true, "type": true,
	"version": false,
}

func (f *fakeInfisical) getSecret(w http.ResponseWriter, r *http.Request, reqID, key string) {
	if r.Method != http.MethodGet {
		f.unexpected(w, reqID, "%s %s, want GET", r.Method, r.URL.Path)
		return
	}
	if key == "" || strings.Contains(key, "/") {
		f.unexpected(w, reqID, "secret key %q in the path", key)
		return
	}
	q := r.URL.Query()
	for k, vs := range q {
		if _, ok := secretQuery[k]; !ok {
			f.unexpected(w, reqID, "unknown query parameter %q", k)
			return
		}
		if len(vs) != 1 {
			f.unexpected(w, reqID, "query parameter %q given %d times", k, len(vs))
			return
		}
	}
	for k, required := range secretQuery {
		if required && !q.Has(k) {
			f.unexpected(w, reqID, "query parameter %q missing", k)
			return
		}
	}
	for _, k := range []string{"expandSecretReferences", "include_imports"} {
		if v := q.Get(k); v != "true" && v != "false" {
			f.unexpected(w, reqID, "%s=%q, want true or false", k, v)
			return
		}
	}
	if t := q.Get("type"); t != "shared" && t != "personal" {
		f.unexpected(w, reqID, "type=%q, want shared or personal", t)
		return
	}
	path := q.Get("secretPath")
	if !strings.HasPrefix(path, "/") || (len(path) > 1 && strings.HasSuffix(path, "/")) || strings.Contains(path, "//") {
		f.unexpected(w, reqID, "secretPath=%q is not a clean absolute folder path", path)
		return
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		f.unexpected(w, reqID, "secret read without a Bearer token")
		return
	}

	f.mu.Lock()
	f.queries = append(f.queries, q)
	tk := f.tokens[tok]
	hang := f.hang
	var value string
	var found bool
	if m := f.secrets[path]; m != nil {
		value, found = m[key]
	}
	denied := f.denied[path]
	switch {
	case tk == nil:
		f.t.Errorf("Infisical stand-in: Bearer token it never issued")
	case tk.revoked == "client":
		f.t.Errorf("Infisical stand-in: the client used a token it had revoked itself")
	case tk.revoked == "" && !tk.expires.IsZero() && time.Now().After(tk.expires):
		f.expired++
	}
	tokenOK := tk != nil && tk.revoked == "" && (tk.expires.IsZero() || time.Now().Before(tk.expires))
	f.mu.Unlock()

	if hang != nil {
		<-hang
	}
	switch {
	case !tokenOK:
		fakeFail(w, reqID, http.StatusUnauthorized, "UnauthorizedError", "Token has expired or was revoked")
	case q.Get("workspaceId") != f.projectID:
		fakeFail(w, reqID, http.StatusNotFound, "NotFound", fmt.Sprintf("Project with ID '%s' not found", q.Get("workspaceId")))
	case q.Get("environment") != f.environment:
		fakeFail(w, reqID, http.StatusNotFound, "NotFound", fmt.Sprintf("Environment with slug '%s' not found", q.Get("environment")))
	case denied:
		fakeFail(w, reqID, http.StatusForbidden, "PermissionDenied", "You are not allowed to read secrets in this folder")
	case !found:
		fakeFail(w, reqID, http.StatusNotFound, "NotFound", fmt.Sprintf("Secret with name '%s' not found", key))
	default:
		fakeWriteJSON(w, http.StatusOK, map[string]any{"secret": map[string]any{
			"id": "sec-" + key, "workspace": f.projectID, "environment": f.environment,
			"version": 1, "type": q.Get("type"), "secretKey": key, "secretValue": value,
			"secretComment": "", "secretPath": path,
			"secretMetadata": []any{}, "tags": []any{},
		}})
	}
}
