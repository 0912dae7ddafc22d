package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
)

// encSecret has every character an encoder treats specially: "_" (\u005f),
// "&" and "<" (Go's \u0026, \u003c), "/" (PHP's \/, %2F), "+" and space.
const encSecret = "ghp_R3fl/ect+ed&x<y>z tail-0123"

func encCred(t *testing.T) *credential {
	t.Helper()
	c, err := compileCredential(&Credential{Name: "gh", Placeholder: "PH-gh-0000", Hosts: []string{"a.test"},
		Inject: []Injection{{Type: "basic", Username: "x-access-token"}}, Secret: staticSecret(encSecret)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// encodedForms are the secret as encoders other than the raw one write it.
func encodedForms(t *testing.T) map[string]string {
	return map[string]string{
		"Basic credentials base64": base64.StdEncoding.EncodeToString([]byte("x-access-token:" + encSecret)),
		"Go JSON":                  goJSON(t, encSecret, true),
		"Go JSON upper hex":        upperHexEscapes(goJSON(t, encSecret, true)),
		"every punct escaped":      punctEscaped(encSecret),
		"every punct upper hex":    upperHexEscapes(punctEscaped(encSecret)),
		"PHP JSON":                 jsonEscape(encSecret, jsonStyle{ascii: true, slash: true}),
		"query lower hex":          lowerPercentHex(url.QueryEscape(encSecret)),
		"path lower hex":           lowerPercentHex(url.PathEscape(encSecret)),
		"base64 of the secret":     base64.RawURLEncoding.EncodeToString([]byte(encSecret)),
	}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	io.WriteString(w, s)
	w.Close()
	return b.Bytes()
}

// TestReflectionRedactsEncodedForms: each encoded form of a secret coming
// back from a bound host reaches the agent as the placeholder, in a header,
// a buffered body, a body streamed one byte per read, and a gzip body.
func TestReflectionRedactsEncodedForms(t *testing.T) {
	p := &Proxy{policy: &policy{creds: []*credential{encCred(t)}}}
	for name, form := range encodedForms(t) {
		if strings.Contains(form, encSecret) {
			t.Fatalf("%s: the form holds the raw secret; the test would prove nothing", name)
		}
		text := `{"echo":"` + form + `"}` + "\n"
		channels := map[string]func() *http.Response{
			"header": func() *http.Response {
				return &http.Response{StatusCode: 200, Header: http.Header{"X-Echo": {"got " + form}}, Body: http.NoBody}
			},
			"buffered body": func() *http.Response {
				return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: int64(len(text)), Body: io.NopCloser(strings.NewReader(text))}
			},
			"body in one-byte reads": func() *http.Response {
				return &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: -1, Body: io.NopCloser(iotest.OneByteReader(strings.NewReader(text)))}
			},
			"gzip body": func() *http.Response {
				gz := gzipped(t, text)
				return &http.Response{StatusCode: 200, Header: http.Header{"Content-Encoding": {"gzip"}}, ContentLength: int64(len(gz)), Body: io.NopCloser(bytes.NewReader(gz))}
			},
		}
		for ch, mk := range channels {
			t.Run(name+"/"+ch, func(t *testing.T) {
				res, ex := mk(), &exchange{}
				p.guardResponse(&http.Request{Method: "GET"}, res, ex)
				body, err := io.ReadAll(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				got := fmt.Sprint(res.Header) + string(body)
				if strings.Contains(got, form) || !strings.Contains(got, "PH-gh-0000") || !ex.redacted.Load() {
					t.Fatalf("form not redacted: %q", got)
				}
			})
		}
	}
}

// TestLeakGuardCatchesEncodedForms: each encoded form of a secret headed to
// a host it is not bound to is refused (header, query, a small body) or
// stopped (a streamed body).
func TestLeakGuardCatchesEncodedForms(t *testing.T) {
	p := &Proxy{policy: &policy{creds: []*credential{encCred(t)}}}
	for name, form := range encodedForms(t) {
		for _, ch := range []string{"header", "query", "small body", "streamed body"} {
			t.Run(name+"/"+ch, func(t *testing.T) {
				req, _ := http.NewRequest("POST", "https://b.test/upload", nil)
				switch ch {
				case "header":
					req.Header.Set("X-Data", "v="+form)
				case "query":
					req.URL.RawQuery = "d=" + form
				case "small body":
					req.Body, req.ContentLength = io.NopCloser(strings.NewReader("d="+form)), int64(len(form)+2)
				case "streamed body":
					req.Body, req.ContentLength = io.NopCloser(iotest.OneByteReader(strings.NewReader("d="+form+"&more"))), -1
				}
				ex := &exchange{}
				res := p.checkLeak(req, "b.test", 443, ex)
				if ch == "streamed body" {
					if res != nil {
						t.Fatalf("refused before streaming: %d", res.StatusCode)
					}
					got, err := io.ReadAll(req.Body)
					if err != errLeak || strings.Contains(string(got), form) {
						t.Fatalf("streamed form not stopped: err=%v passed %q", err, got)
					}
					return
				}
				if res == nil || res.StatusCode != http.StatusForbidden || ex.rec.Action != ActionLeakBlocked {
					t.Fatalf("form not refused: %+v", ex.rec)
				}
			})
		}
	}
}

func deflated(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, flate.DefaultCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// TestGuardResponseContentCodings: stacked gzip and deflate layers are
// undone in order and the body redacted; a coding the guard cannot read is
// refused with a 502 recorded as an error while reflection is redact, and
// passed on untouched when it is off.
func TestGuardResponseContentCodings(t *testing.T) {
	const s = "coding-secret-0123456789"
	plain := "echo " + s + " end"
	gz := gzipped(t, plain)
	cases := []struct {
		name    string
		codings []string // header lines
		body    []byte
		off     bool
		refused bool
	}{
		{"gzip", []string{"gzip"}, gz, false, false},
		{"gzip, gzip", []string{"gzip, gzip"}, gzipped(t, string(gz)), false, false},
		{"gzip twice on two lines", []string{"gzip", "gzip"}, gzipped(t, string(gz)), false, false},
		{"deflate then gzip", []string{"deflate, gzip"}, gzipped(t, string(deflated(t, []byte(plain)))), false, false},
		{"identity and x-gzip", []string{"identity, x-gzip"}, gz, false, false},
		{"unknown", []string{"x-unknown"}, []byte(plain), false, true},
		{"br", []string{"br"}, []byte(plain), false, true},
		{"gzip then br", []string{"gzip, br"}, gz, false, true},
		{"five layers", []string{"gzip, gzip, gzip, gzip, gzip"}, gz, false, true},
		{"unknown with reflection off", []string{"x-unknown"}, []byte(plain), true, false},
		{"empty gzip body", []string{"gzip"}, nil, false, false},
		{"empty body in an unknown coding", []string{"x-unknown"}, nil, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Proxy{policy: &policy{creds: []*credential{testCred("a", s, "PH-a", "a.test")}}}
			if tc.off {
				p.Guard.Reflection = "off"
			}
			closed := false
			res := &http.Response{StatusCode: 200, Header: http.Header{"Content-Encoding": tc.codings},
				ContentLength: int64(len(tc.body)), Body: closeNoter{bytes.NewReader(tc.body), &closed}}
			ex := &exchange{}
			p.guardResponse(&http.Request{Method: "GET"}, res, ex)
			body, err := io.ReadAll(res.Body)
			switch {
			case tc.refused:
				if res.StatusCode != http.StatusBadGateway || ex.rec.Action != ActionError || ex.rec.Error == "" ||
					!strings.Contains(string(body), "cannot read") && !strings.Contains(string(body), "stacked") || !closed {
					t.Fatalf("not refused: %d %q record %+v upstream body closed %v", res.StatusCode, body, ex.rec, closed)
				}
				if bytes.Contains(body, []byte(s)) {
					t.Fatal("refusal carries the secret")
				}
			case tc.off:
				if res.StatusCode != 200 || !bytes.Equal(body, tc.body) {
					t.Fatalf("reflection off changed the response: %d %q", res.StatusCode, body)
				}
			case len(tc.body) == 0:
				if res.StatusCode != 200 || len(body) != 0 || err != nil {
					t.Fatalf("empty body: %d %q %v", res.StatusCode, body, err)
				}
			default:
				if res.StatusCode != 200 || string(body) != "echo PH-a end" || res.Header.Get("Content-Encoding") != "" {
					t.Fatalf("got %d %q, Content-Encoding %q", res.StatusCode, body, res.Header.Get("Content-Encoding"))
				}
			}
		})
	}
}

type closeNoter struct {
	io.Reader
	closed *bool
}

func (c closeNoter) Close() error { *c.closed = true; return nil }

// TestCodingsThroughProxy: through the running proxy, a doubly gzipped body
// reaches the client decoded and redacted, and an unreadable coding is a
// 502 with a body that says why and an error record.
func TestCodingsThroughProxy(t *testing.T) {
	const s = "proxy-coding-secret-0123"
	up := newTestCA(t, "upstream")
	srv, _ := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		text := "you sent " + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch r.URL.Path {
		case "/double":
			w.Header().Set("Content-Encoding", "gzip, gzip")
			w.Write(gzipped(t, string(gzipped(t, text))))
		case "/unknown":
			w.Header().Set("Content-Encoding", "x-unknown")
			io.WriteString(w, text)
		}
	}), "a.example.test")
	creds := []*Credential{{Name: "a", Placeholder: "PH-a-0000000000", Hosts: []string{"a.example.test"}, Inject: []Injection{{Type: "bearer"}}, Secret: staticSecret(s)}}
	h := startProxy(t, up, creds, Egress{}, map[string]string{"a.example.test:443": hostPortOf(srv)})
	c := h.client(testPassword, nil)
	c.Transport.(*http.Transport).DisableCompression = true
	get := func(path string) (int, string) {
		res, err := c.Get("https://a.example.test" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/double"); code != 200 || body != "you sent PH-a-0000000000" {
		t.Errorf("gzip, gzip: %d %q", code, body)
	}
	code, body := get("/unknown")
	if code != http.StatusBadGateway || !strings.Contains(body, `"x-unknown"`) || strings.Contains(body, s) {
		t.Errorf("x-unknown: %d %q", code, body)
	}
	recs := h.waitRecords(t, 2)
	if recs[1].Action != ActionError || recs[1].Status != http.StatusBadGateway || !strings.Contains(recs[1].Error, "x-unknown") {
		t.Errorf("record %+v", recs[1])
	}
}
