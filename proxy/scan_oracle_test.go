package proxy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// pausingSource hands out data, then blocks (as an agent pausing mid-stream
// does) until released, then ends. blocked is closed when it starts waiting.
type pausingSource struct {
	data    []byte
	step    int // bytes per read; 0 = all at once
	blocked chan struct{}
	release chan struct{}
	once    sync.Once
}

func newPausingSource(data []byte, step int) *pausingSource {
	return &pausingSource{data: data, step: step, blocked: make(chan struct{}), release: make(chan struct{})}
}

func (s *pausingSource) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		s.once.Do(func() { close(s.blocked) })
		<-s.release
		return 0, io.EOF
	}
	n := len(p)
	if s.step > 0 {
		n = min(n, s.step)
	}
	n = copy(p[:n], s.data)
	s.data = s.data[n:]
	return n, nil
}

func (s *pausingSource) Close() error { return nil }

// releasedBeforePause returns how many bytes a guard built by wrap passes on
// while its source pauses after data: what the agent on the other side can
// observe. A scanReader only reads its source once all it released has been
// handed out, so the count is exact when the source blocks.
func releasedBeforePause(t *testing.T, data []byte, step int, wrap func(io.ReadCloser) io.Reader) []byte {
	t.Helper()
	src := newPausingSource(data, step)
	r := wrap(src)
	var mu sync.Mutex
	var got []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			mu.Lock()
			got = append(got, buf[:n]...)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-src.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("the guard never read its source to the pause")
	}
	mu.Lock()
	out := append([]byte(nil), got...)
	mu.Unlock()
	close(src.release)
	<-done
	return out
}

// oracleSecrets are one secret per hold-back class.
var oracleSecrets = []struct {
	level, secret string
}{
	{"token", "sk-ant-api03-Qw3rTy_uIop-ASDF1234ghjkZX"},
	{"line", `p@ss w0rd!{"x"}:long-enough-secret`},
	{"window", "line-one-secret\nline-two-secret"},
}

// wrongOf returns a string of len(s) bytes, each in the same class as the
// byte of s at that place but never the first byte of a needle: no suffix of
// it can begin a secret, so a guard that held back "what could begin a
// secret" would release it at once, and a true prefix not.
func wrongOf(s []byte, m *matcher) []byte {
	first := map[byte]bool{}
	for _, n := range m.needles {
		first[n.b[0]] = true
	}
	var cands []byte
	for _, c := range []byte("0123456789QZqzjJ") {
		if !first[c] {
			cands = append(cands, c)
		}
	}
	out := make([]byte, len(s))
	for i := range s {
		out[i] = cands[i%len(cands)]
		if !m.hold[s[i]] {
			out[i] = s[i] // not in the class: the same byte keeps the class pattern
		}
	}
	return out
}

// TestGuardsAreNoPrefixOracle: a true prefix of any form of a secret and a
// wrong string of the same length and class, each at the end of what an
// agent sent before pausing, are passed on to exactly the same extent, by
// the leak guard (request bodies) and by the reflection guard (responses).
func TestGuardsAreNoPrefixOracle(t *testing.T) {
	const filler = "{\"event\": \"filler\"}\ndata: "
	for _, sc := range oracleSecrets {
		guards := []struct {
			name  string
			forms func(string) [][]byte
			wrap  func(m *matcher) func(io.ReadCloser) io.Reader
		}{
			{"leak", leakForms, func(m *matcher) func(io.ReadCloser) io.Reader {
				return func(rc io.ReadCloser) io.Reader { return newLeakReader(rc, m, true) }
			}},
			{"reflection", reflectForms, func(m *matcher) func(io.ReadCloser) io.Reader {
				return func(rc io.ReadCloser) io.Reader { return newRedactor(rc, m, func() {}) }
			}},
		}
		for _, g := range guards {
			m := newMatcher([]*credential{testCred("a", sc.secret, "PH", "a.test")}, g.forms)
			for i, n := range m.needles {
				for _, k := range []int{1, 2, len(n.b) / 2, len(n.b) - 1} {
					for _, step := range []int{0, 1} {
						name := fmt.Sprintf("%s/%s/form%d=%.12q/k=%d/step=%d", sc.level, g.name, i, n.b, k, step)
						t.Run(name, func(t *testing.T) {
							prefix := n.b[:k]
							wrong := wrongOf(prefix, m)
							right := releasedBeforePause(t, append([]byte(filler), prefix...), step, g.wrap(m))
							other := releasedBeforePause(t, append([]byte(filler), wrong...), step, g.wrap(m))
							if len(right) != len(other) {
								t.Fatalf("released %d bytes of a true prefix but %d of a wrong one: an oracle", len(right), len(other))
							}
							if !bytes.HasPrefix(append([]byte(filler), prefix...), right) {
								t.Fatalf("released %q, not a prefix of the input", right)
							}
						})
					}
				}
			}
		}
	}
}

// TestHoldbackDependsOnlyOnClass: the hold-back is the trailing run of class
// bytes, capped at the longest needle - 1, whatever the bytes are; a byte
// outside the class (a JSON or SSE delimiter) releases everything.
func TestHoldbackDependsOnlyOnClass(t *testing.T) {
	for _, sc := range oracleSecrets {
		m := newMatcher([]*credential{testCred("a", sc.secret, "PH", "a.test")}, leakForms)
		want := map[string]*byteClass{"token": tokenClass, "line": lineClass, "window": anyClass}[sc.level]
		if m.hold != want {
			t.Fatalf("%s: class is not the %s class", sc.level, sc.level)
		}
		rng := rand.New(rand.NewSource(1))
		for trial := 0; trial < 200; trial++ {
			b := make([]byte, rng.Intn(3*m.maxLen))
			for i := range b {
				b[i] = byte(rng.Intn(256))
				if rng.Intn(4) > 0 { // mostly class bytes, so runs are long
					b[i] = "abcXYZ019-_%"[rng.Intn(12)]
				}
			}
			run := 0
			for run < len(b) && m.hold[b[len(b)-1-run]] {
				run++
			}
			if got, want := m.holdback(b), min(run, m.maxLen-1); got != want {
				t.Fatalf("%s: holdback %d, want %d for %q", sc.level, got, want, b)
			}
		}
	}
	m := newMatcher([]*credential{testCred("a", oracleSecrets[0].secret, "PH", "a.test")}, reflectForms)
	for _, end := range []string{"\n", "}", `"`, " ", ","} {
		if got := m.holdback([]byte(`data: {"text":"sk-ant-api03-Qw3r` + end)); got != 0 {
			t.Errorf("a stream ending in %q holds back %d bytes", end, got)
		}
	}
}

// TestGuardsFindSplitSecretsInEveryClass: holding back only a class run
// still sees every form of a secret whole, however the reads split it.
func TestGuardsFindSplitSecretsInEveryClass(t *testing.T) {
	for _, sc := range oracleSecrets {
		for _, g := range []struct {
			name  string
			forms func(string) [][]byte
		}{{"leak", leakForms}, {"reflection", reflectForms}} {
			m := newMatcher([]*credential{testCred("a", sc.secret, "PH", "a.test")}, g.forms)
			for i, n := range m.needles {
				for _, split := range []string{"one byte", "half", "whole"} {
					t.Run(fmt.Sprintf("%s/%s/form%d/%s", sc.level, g.name, i, split), func(t *testing.T) {
						body := "lead-in " + strings.Repeat("x", 50) + string(n.b) + "\ntail"
						src := func() io.ReadCloser {
							switch split {
							case "one byte":
								return io.NopCloser(iotest.OneByteReader(strings.NewReader(body)))
							case "half":
								return io.NopCloser(iotest.HalfReader(strings.NewReader(body)))
							}
							return io.NopCloser(strings.NewReader(body))
						}
						if g.name == "leak" {
							lr := newLeakReader(src(), m, true)
							got, err := io.ReadAll(lr)
							if err != errLeak || lr.hit == nil || bytes.Contains(got, n.b) {
								t.Fatalf("not blocked: err=%v, passed %q", err, got)
							}
							return
						}
						var hits atomic.Int32
						got, err := io.ReadAll(newRedactor(src(), m, func() { hits.Add(1) }))
						if err != nil || bytes.Contains(got, n.b) || hits.Load() == 0 || !bytes.Contains(got, []byte("PH")) {
							t.Fatalf("not redacted: err=%v, got %q", err, got)
						}
					})
				}
			}
		}
	}
}

// TestRedactLongestFirst: when one credential's value holds another's, the
// longer one is replaced whole, not cut open by the shorter one's
// placeholder.
func TestRedactLongestFirst(t *testing.T) {
	short := testCred("short", "inner-secret-123", "PH-short", "a.test")
	long := testCred("long", "outer-inner-secret-123-tail", "PH-long", "a.test")
	for _, creds := range [][]*credential{{short, long}, {long, short}} {
		m := newMatcher(creds, reflectForms)
		got, _ := m.redact([]byte("x outer-inner-secret-123-tail y inner-secret-123 z"))
		if want := "x PH-long y PH-short z"; string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestHoldbackCapIsPublic: the cap on what is held back depends on the
// secret's length only, not on how many of its characters an encoding
// escapes (which the longest form's length would tell an agent that sends a
// long run of class bytes and pauses).
func TestHoldbackCapIsPublic(t *testing.T) {
	plain := "sk-ant-api03-" + strings.Repeat("a", 60)
	dashy := "sk-ant-api03-" + strings.Repeat("a-", 30)
	run := []byte(strings.Repeat("Z", 2000))
	for _, forms := range []func(string) [][]byte{leakForms, reflectForms} {
		var got []int
		for _, s := range []string{plain, dashy} {
			m := newMatcher([]*credential{testCred("a", s, "PH", "a.test")}, forms)
			got = append(got, m.holdback(run))
			for _, n := range m.needles {
				if len(n.b) > m.maxLen {
					t.Fatalf("needle of %d bytes over the cap %d", len(n.b), m.maxLen)
				}
			}
		}
		if got[0] != got[1] {
			t.Errorf("a run of class bytes is held back %d bytes for one secret, %d for another of the same length", got[0], got[1])
		}
	}
}
