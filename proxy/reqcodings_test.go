package proxy

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/agentvault/agentvault/vocab"
)

const codedSecret = "coded-secret-Zq9-0123456789"

func codedProxy(mode string) *Proxy {
	p := &Proxy{policy: &policy{creds: []*credential{testCred("a", codedSecret, "PH-a", "a.test")}}}
	p.Guard.Leak = vocab.LeakMode(mode)
	return p
}

func zlibbed(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := zlib.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// encode applies codings in order, as a client does for Content-Encoding.
func encode(t *testing.T, b []byte, codings ...string) []byte {
	for _, c := range codings {
		switch c {
		case "gzip", "x-gzip":
			b = gzipped(t, string(b))
		case "deflate":
			b = zlibbed(t, b)
		case "raw deflate":
			b = deflated(t, b)
		}
	}
	return b
}

// noisy is n bytes of text that compresses about as JSON does.
func noisy(n int, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	words := []string{"alpha", "beta", "gamma", "delta", `"key":`, "{", "}", ",", "\n", "0123", "value-", "x"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.Intn(len(words))])
		b.WriteByte(' ')
		if rng.Intn(4) == 0 {
			fmt.Fprintf(&b, "%x", rng.Int63())
		}
	}
	return b.Bytes()[:n]
}

// decodesTo reports whether what reached the upstream, decoded as far as it
// goes, holds s.
func decodesTo(t *testing.T, sent []byte, codings []string, s string) bool {
	t.Helper()
	var r io.Reader = bytes.NewReader(sent)
	for i := len(codings) - 1; i >= 0; i-- {
		var err error
		switch codings[i] {
		case "gzip":
			r, err = gzip.NewReader(r)
		case "deflate":
			r, err = zlib.NewReader(r)
		}
		if err != nil {
			return false
		}
	}
	got, _ := io.ReadAll(r)
	return bytes.Contains(got, []byte(s))
}

// TestLeakGuardCompressedBodies: a secret in a gzip, deflate or stacked body
// headed to a host it is not bound to is refused (a small body) or stopped
// before the upstream has bytes that decode to it (a streamed body, also
// deep inside one after megabytes have been passed on); a clean body
// passes byte for byte as the client compressed it.
func TestLeakGuardCompressedBodies(t *testing.T) {
	type coding struct {
		name    string
		header  []string
		applied []string // for encode
		decode  []string // for decodesTo
	}
	codings := []coding{
		{"gzip", []string{"gzip"}, []string{"gzip"}, []string{"gzip"}},
		{"x-gzip", []string{"x-gzip"}, []string{"gzip"}, []string{"gzip"}},
		{"deflate zlib", []string{"deflate"}, []string{"deflate"}, []string{"deflate"}},
		{"deflate raw", []string{"Deflate"}, []string{"raw deflate"}, nil},
		{"gzip, gzip", []string{"gzip, gzip"}, []string{"gzip", "gzip"}, []string{"gzip", "gzip"}},
		{"deflate, gzip on two lines", []string{"deflate", "gzip"}, []string{"deflate", "gzip"}, []string{"deflate", "gzip"}},
		{"identity, gzip", []string{"identity, gzip"}, []string{"gzip"}, []string{"gzip"}},
	}
	bodies := []struct {
		name  string
		plain []byte
		leaks bool
	}{
		{"secret", []byte(`{"note":"` + codedSecret + `"}`), true},
		{"percent-escaped secret", []byte("d=" + strings.ToLower(fullPercentForms(codedSecret)[0])), true},
		{"secret after 3 MiB", append(append(noisy(3<<20, 1), codedSecret...), noisy(100<<10, 2)...), true},
		{"clean", noisy(200<<10, 3), false},
		{"clean, small", []byte(`{"note":"nothing here"}`), false},
	}
	for _, cd := range codings {
		for _, bd := range bodies {
			sent := encode(t, bd.plain, cd.applied...)
			for _, mode := range []string{"small", "streamed"} {
				if mode == "small" && len(sent) > maxBuffered {
					continue
				}
				t.Run(cd.name+"/"+bd.name+"/"+mode, func(t *testing.T) {
					p := codedProxy("block")
					req, _ := http.NewRequest("POST", "https://b.test/up", nil)
					req.Header["Content-Encoding"] = cd.header
					if mode == "small" {
						req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(sent)), int64(len(sent))
					} else {
						req.Body, req.ContentLength = io.NopCloser(iotest.HalfReader(bytes.NewReader(sent))), -1
					}
					ex := &exchange{}
					res := p.checkLeak(req, "b.test", 443, ex)
					if mode == "small" && bd.leaks {
						if res == nil || res.StatusCode != http.StatusForbidden || ex.rec.Action != ActionLeakBlocked {
							t.Fatalf("not refused: %+v", ex.rec)
						}
						return
					}
					if res != nil {
						t.Fatalf("refused: %d %+v", res.StatusCode, ex.rec)
					}
					got, err := io.ReadAll(req.Body)
					if !bd.leaks {
						if err != nil || !bytes.Equal(got, sent) {
							t.Fatalf("clean body changed: err %v, %d bytes of %d", err, len(got), len(sent))
						}
						return
					}
					if err != errLeak || ex.leak == nil || ex.leak.hit == nil {
						t.Fatalf("not stopped: err %v", err)
					}
					if cd.decode != nil && decodesTo(t, got, cd.decode, codedSecret) {
						t.Fatal("the upstream got bytes that decode to the secret")
					}
					if len(bd.plain) > 1<<20 && len(got) == 0 {
						t.Fatal("nothing passed before the secret: the body is not streamed")
					}
				})
			}
		}
	}
}

// TestLeakGuardUnreadableBodies: a body in a coding the guard cannot read,
// or that does not decode to its end, is refused with 415 and an error
// record when blocking, before the upstream has all of it; passed whole,
// with a warning, when warning.
func TestLeakGuardUnreadableBodies(t *testing.T) {
	defer func(old int64) { maxDecodedBase = old }(maxDecodedBase)
	maxDecodedBase = 4 << 20
	gz := gzipped(t, "hello "+codedSecret)
	corrupt := append([]byte(nil), gz...)
	corrupt[len(corrupt)/2] ^= 0xff
	bomb := encode(t, make([]byte, 16<<20), "gzip")
	cases := []struct {
		name   string
		header string
		body   []byte
		why    string
	}{
		{"br", "br", []byte("anything " + codedSecret), `"br"`},
		{"zstd", "zstd", []byte("anything"), `"zstd"`},
		{"unknown", "x-unknown", []byte("anything"), `"x-unknown"`},
		{"gzip then br", "gzip, br", gz, `"br"`},
		{"five layers", "gzip, gzip, gzip, gzip, gzip", gz, "stacked"},
		{"corrupt gzip", "gzip", corrupt, "cannot read"},
		{"not gzip at all", "gzip", []byte("plain text, no gzip header"), "cannot read"},
		{"data after a zlib stream", "deflate", append(zlibbed(t, []byte("hello")), "trailing"...), "after the end"},
		{"data after a gzip stream", "gzip", append(gzipped(t, "hello"), "trailing"...), "cannot read"},
		{"bomb", "gzip", bomb, "cannot read"},
		{"gzip in aws-chunked framing", "aws-chunked, gzip", gz, "aws-chunked"},
		{"empty blocks held back too long", "deflate", bytes.Repeat([]byte{0, 0, 0, 0xff, 0xff}, 300<<10), "cannot read"},
	}
	for _, tc := range cases {
		for _, mode := range []string{"small", "streamed"} {
			for _, leak := range []string{"block", "warn"} {
				t.Run(tc.name+"/"+mode+"/"+leak, func(t *testing.T) {
					p := codedProxy(leak)
					req, _ := http.NewRequest("POST", "https://b.test/up", nil)
					req.Header.Set("Content-Encoding", tc.header)
					req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(tc.body)), int64(len(tc.body))
					if mode == "streamed" {
						req.ContentLength = -1
					}
					ex := &exchange{}
					res := p.checkLeak(req, "b.test", 443, ex)
					var got []byte
					var err error
					if res == nil {
						got, err = io.ReadAll(req.Body)
					}
					if leak == "warn" {
						if res != nil || err != nil || !bytes.Equal(got, tc.body) {
							t.Fatalf("warn: refused or changed: %v %v", res, err)
						}
						p.finish(ex)
						if !strings.Contains(ex.rec.Warning, "cannot read") && !strings.Contains(ex.rec.Warning, "stacked") {
							t.Fatalf("no warning: %+v", ex.rec)
						}
						return
					}
					why := ex.rec.Error
					if res == nil {
						// Stopped while streaming: the exchange turns this into the 415.
						if err != errUnreadable || ex.leak == nil || ex.leak.unreadable == "" || bytes.Equal(got, tc.body) {
							t.Fatalf("streamed body not stopped: err %v, passed %d of %d", err, len(got), len(tc.body))
						}
						why = ex.leak.unreadable
					} else if res.StatusCode != http.StatusUnsupportedMediaType || ex.rec.Action != ActionError || res.Header.Get("Accept-Encoding") == "" {
						t.Fatalf("not refused with 415: %d %+v", res.StatusCode, ex.rec)
					}
					if !strings.Contains(why, tc.why) {
						t.Fatalf("reason %q does not say %q", why, tc.why)
					}
				})
			}
		}
	}
}

// TestCodedScanIsNoPrefixOracle: in a gzip body, a true prefix of a secret
// and a wrong string of the same length and class, each after a flushed
// filler and before a pause, let exactly as many compressed bytes through.
func TestCodedScanIsNoPrefixOracle(t *testing.T) {
	filler := noisy(400<<10, 7)
	m := newMatcher([]*credential{testCred("a", codedSecret, "PH", "a.test")}, leakForms)
	for _, n := range m.needles {
		for _, k := range []int{1, len(n.b) / 2, len(n.b) - 1} {
			t.Run(fmt.Sprintf("%.12q/k=%d", n.b, k), func(t *testing.T) {
				stream := func(tail []byte) []byte {
					var b bytes.Buffer
					w := gzip.NewWriter(&b)
					w.Write(filler)
					w.Flush()
					w.Write(tail)
					w.Flush() // no Close: the client pauses mid-stream
					return b.Bytes()
				}
				wrap := func(rc io.ReadCloser) io.Reader {
					return newCodedLeakReader(rc, []string{"gzip"}, m, true, maxHeldCoded)
				}
				right := releasedBeforePause(t, stream(n.b[:k]), 0, wrap)
				other := releasedBeforePause(t, stream(wrongOf(n.b[:k], m)), 0, wrap)
				if len(right) != len(other) {
					t.Fatalf("released %d compressed bytes before a true prefix, %d before a wrong one", len(right), len(other))
				}
				if len(right) == 0 {
					t.Fatal("nothing released: the test would prove nothing")
				}
			})
		}
	}
}

// TestCodedLeakThroughProxy: through the running proxy with inspect: all,
// a gzip upload of unknown length carrying another host's secret is
// refused and the upstream never gets it; one in an unreadable coding is a
// 415; a clean one arrives compressed as sent.
func TestCodedLeakThroughProxy(t *testing.T) {
	up := newTestCA(t, "upstream")
	got := make(chan []byte, 10)
	srv, _ := upstream(t, up, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}), "b.example.test")
	creds := []*Credential{{Name: "a", Placeholder: "PH-a-0000000000", Hosts: []string{"a.example.test"}, Secret: staticSecret(codedSecret)}}
	h := startProxy(t, up, creds, Egress{InspectAll: true}, map[string]string{"b.example.test:443": hostPortOf(srv)})
	c := h.client(testPassword, nil)
	post := func(coding string, body []byte) int {
		// A reader that hides its length: the body goes chunked and streams.
		req, _ := http.NewRequest("POST", "https://b.example.test/up", io.MultiReader(bytes.NewReader(body)))
		req.Header.Set("Content-Encoding", coding)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	leaky := gzipped(t, string(noisy(2<<20, 4))+codedSecret)
	if code := post("gzip", leaky); code != http.StatusForbidden {
		t.Errorf("leaky gzip: %d", code)
	}
	if code := post("br", []byte(codedSecret)); code != http.StatusUnsupportedMediaType {
		t.Errorf("br: %d", code)
	}
	clean := gzipped(t, string(noisy(2<<20, 5)))
	if code := post("gzip", clean); code != 200 {
		t.Errorf("clean gzip: %d", code)
	}
	close(got)
	var last []byte
	for b := range got {
		if decodesTo(t, b, []string{"gzip"}, codedSecret) || bytes.Contains(b, []byte(codedSecret)) {
			t.Error("the upstream got the secret")
		}
		last = b
	}
	if !bytes.Equal(last, clean) {
		t.Errorf("the clean body arrived changed (%d bytes of %d)", len(last), len(clean))
	}
	recs := h.waitRecords(t, 3)
	if recs[0].Action != ActionLeakBlocked || recs[1].Action != ActionError || recs[1].Status != http.StatusUnsupportedMediaType || recs[2].Action != ActionPass {
		t.Errorf("records %+v", recs)
	}
}

// failingBody returns data, then fails as a client that went away does.
type failingBody struct{ r io.Reader }

var errClientGone = fmt.Errorf("client went away")

func (f failingBody) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errClientGone
	}
	return n, err
}

func (failingBody) Close() error { return nil }

// TestCodedBodyEdges: an empty compressed body passes; a client whose body
// fails mid-stream is that failure, not an unreadable body.
func TestCodedBodyEdges(t *testing.T) {
	m := newMatcher([]*credential{testCred("a", codedSecret, "PH", "a.test")}, leakForms)
	for _, codings := range [][]string{{"gzip"}, {"deflate"}, {"gzip", "gzip"}} {
		name := strings.Join(codings, ", ")
		t.Run("empty/"+name, func(t *testing.T) {
			c := newCodedLeakReader(io.NopCloser(bytes.NewReader(nil)), codings, m, true, maxHeldCoded)
			if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
				t.Fatalf("empty body: %q %v", got, err)
			}
		})
		t.Run("client fails/"+name, func(t *testing.T) {
			body := encode(t, noisy(300<<10, 9), codings...)
			c := newCodedLeakReader(failingBody{bytes.NewReader(body[:len(body)/2])}, codings, m, true, maxHeldCoded)
			_, err := io.ReadAll(c)
			if err != errClientGone || c.lr.unreadable != "" {
				t.Fatalf("err %v, unreadable %q", err, c.lr.unreadable)
			}
		})
	}
}

// TestAWSChunkedScannedAsSent: S3's aws-chunked framing is not a
// compression: such a body is scanned as sent, refused with a secret in it
// and passed without.
func TestAWSChunkedScannedAsSent(t *testing.T) {
	for _, tc := range []struct {
		body  string
		leaks bool
	}{
		{"10;chunk-signature=abc\r\nhello " + codedSecret + "\r\n0;chunk-signature=def\r\n\r\n", true},
		{"5;chunk-signature=abc\r\nhello\r\n0;chunk-signature=def\r\n\r\n", false},
	} {
		p := codedProxy("block")
		req, _ := http.NewRequest("PUT", "https://b.test/bucket/key", strings.NewReader(tc.body))
		req.Header.Set("Content-Encoding", "aws-chunked")
		ex := &exchange{}
		res := p.checkLeak(req, "b.test", 443, ex)
		if refused := res != nil && res.StatusCode == http.StatusForbidden && ex.rec.Action == ActionLeakBlocked; refused != tc.leaks {
			t.Errorf("leaks %v: refused %v (%+v)", tc.leaks, refused, ex.rec)
		}
	}
}
