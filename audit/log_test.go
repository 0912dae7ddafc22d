package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentvault/agentvault/proxy"
)

var specFields = []string{
	"ts", "session", "seq", "action", "method", "scheme", "host", "port", "path",
	"credential", "status", "req_bytes", "resp_bytes", "duration_ms", "retried",
	"redacted", "warning", "error",
}

func TestEntryLine(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		seq  int64
		rec  proxy.Record
		want string
	}{
		{
			name: "spec example, converted to UTC and cut to microseconds",
			seq:  17,
			rec: proxy.Record{
				Time:   time.Date(2026, 11, 28, 15, 3, 7, 123456789, cet),
				Action: proxy.ActionInject, Method: "POST", Scheme: "https",
				Host: "api.anthropic.com", Port: 443, Path: "/v1/messages",
				Credential: "anthropic", Status: 200, ReqBytes: 5123, RespBytes: 20480,
				Duration: 812*time.Millisecond + 440*time.Microsecond,
			},
			want: `{"ts":"2026-11-28T14:03:07.123456Z","session":"av-7f3a2c9e","seq":17,"action":"inject",` +
				`"method":"POST","scheme":"https","host":"api.anthropic.com","port":443,"path":"/v1/messages",` +
				`"credential":"anthropic","status":200,"req_bytes":5123,"resp_bytes":20480,"duration_ms":812.4,` +
				`"retried":false,"redacted":false,"warning":"","error":""}`,
		},
		{
			name: "deny keeps empty fields and pads microseconds",
			seq:  1,
			rec: proxy.Record{
				Time:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
				Action: proxy.ActionDeny, Method: "CONNECT", Host: "paste.pastebin.com", Port: 443,
				Status: 403, Error: "egress deny *.pastebin.com",
			},
			want: `{"ts":"2026-01-02T03:04:05.000000Z","session":"av-7f3a2c9e","seq":1,"action":"deny",` +
				`"method":"CONNECT","scheme":"","host":"paste.pastebin.com","port":443,"path":"",` +
				`"credential":"","status":403,"req_bytes":0,"resp_bytes":0,"duration_ms":0,` +
				`"retried":false,"redacted":false,"warning":"","error":"egress deny *.pastebin.com"}`,
		},
		{
			name: "flags, warning, and no HTML escaping",
			seq:  3,
			rec: proxy.Record{
				Time:   time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC),
				Action: proxy.ActionPass, Method: "GET", Scheme: "https", Host: "evil.test", Port: 8443,
				Path: "/a&b<c>", Status: 502, Duration: 50 * time.Microsecond,
				Retried: true, Redacted: true, Warning: `placeholder for "github" sent to evil.test`,
			},
			want: `{"ts":"2026-01-02T03:04:05.999999Z","session":"av-7f3a2c9e","seq":3,"action":"pass",` +
				`"method":"GET","scheme":"https","host":"evil.test","port":8443,"path":"/a&b<c>",` +
				`"credential":"","status":502,"req_bytes":0,"resp_bytes":0,"duration_ms":0.1,` +
				`"retried":true,"redacted":true,"warning":"placeholder for \"github\" sent to evil.test","error":""}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEntry("av-7f3a2c9e", tt.seq, tt.rec)
			line, err := e.appendLine(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(line); got != tt.want+"\n" {
				t.Errorf("line:\n got %s\nwant %s", got, tt.want)
			}
			// MarshalJSON is the same line without the newline.
			b, err := e.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("MarshalJSON:\n got %s\nwant %s", b, tt.want)
			}
			if keys := jsonKeys(t, b); strings.Join(keys, ",") != strings.Join(specFields, ",") {
				t.Errorf("keys %v, want %v", keys, specFields)
			}
		})
	}
}

// jsonKeys returns the top-level keys of a JSON object in their order.
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v %v", tok, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestEntryZeroTimeIsNow(t *testing.T) {
	before := time.Now().Add(-time.Second)
	e := NewEntry("s", 1, proxy.Record{Action: proxy.ActionPass})
	if e.Time.Before(before) || e.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("zero record time became %v, want about now", e.Time)
	}
	if e.Time.Location() != time.UTC {
		t.Errorf("location %v, want UTC", e.Time.Location())
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		t.Fatalf("file does not end with a newline: %q", s)
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestLogWritesThrough(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte(`{"earlier":"session"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLog(path, "av-1")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("mode %v: the log must not be readable by others", fi.Mode().Perm())
	}
	rec := proxy.Record{Time: time.Now(), Action: proxy.ActionPass, Host: "example.com", Port: 443, Path: "/x", Status: 200}
	for want := 1; want <= 3; want++ {
		if err := l.Write(rec); err != nil {
			t.Fatal(err)
		}
		// Each line must be in the file as soon as Write returns, before Close.
		lines := readLines(t, path)
		if len(lines) != want+1 {
			t.Fatalf("after %d writes: %d lines, want %d", want, len(lines), want+1)
		}
		var e Entry
		if err := json.Unmarshal([]byte(lines[want]), &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(want) || e.Session != "av-1" {
			t.Errorf("line %d: seq %d session %q", want, e.Seq, e.Session)
		}
	}
	if lines := readLines(t, path); lines[0] != `{"earlier":"session"}` {
		t.Errorf("existing content was not kept: %q", lines[0])
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.Write(rec); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want os.ErrClosed", err)
	}
	if n := len(readLines(t, path)); n != 4 {
		t.Errorf("%d lines after a refused write, want 4", n)
	}
}

func TestNilLogDiscards(t *testing.T) {
	var l *Log
	if err := l.Write(proxy.Record{}); err != nil {
		t.Error(err)
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
}

func TestOpenLogError(t *testing.T) {
	_, err := OpenLog(filepath.Join(t.TempDir(), "missing", "audit.jsonl"), "s")
	if err == nil {
		t.Fatal("OpenLog in a missing directory succeeded")
	}
}

// Two sessions appending to one file, each from many goroutines: every line
// must stay whole and each session's seqs must be 1..n in file order.
func TestLogConcurrentWrites(t *testing.T) {
	const goroutines, perG = 8, 50
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sessions := []string{"av-a", "av-b"}
	var wg sync.WaitGroup
	for _, id := range sessions {
		l, err := OpenLog(path, id)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perG; i++ {
					err := l.Write(proxy.Record{
						Time: time.Now(), Action: proxy.ActionInject, Method: "POST",
						Host: "api.example.com", Port: 443, Path: strings.Repeat("/p", 100),
						Credential: "c", Status: 200, ReqBytes: int64(i),
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ReadLog(f)
	if err != nil {
		t.Fatalf("ReadLog: %v", err)
	}
	if want := len(sessions) * goroutines * perG; len(entries) != want {
		t.Fatalf("%d entries, want %d", len(entries), want)
	}
	last := map[string]int64{}
	for i, e := range entries {
		if e.Seq != last[e.Session]+1 {
			t.Fatalf("entry %d: session %s seq %d after %d", i, e.Session, e.Seq, last[e.Session])
		}
		last[e.Session] = e.Seq
	}
	for _, id := range sessions {
		if last[id] != goroutines*perG {
			t.Errorf("session %s: last seq %d, want %d", id, last[id], goroutines*perG)
		}
	}
}
