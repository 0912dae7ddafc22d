package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentvault/agentvault/proxy"
)

func TestReadLogRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := OpenLog(path, "av-rt")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 28, 14, 3, 7, 123456000, time.UTC)
	recs := []proxy.Record{
		{Time: t0, Action: proxy.ActionInject, Method: "POST", Scheme: "https", Host: "api.anthropic.com",
			Port: 443, Path: "/v1/messages", Credential: "anthropic", Status: 200, ReqBytes: 5123,
			RespBytes: 20480, Duration: 812400 * time.Microsecond},
		{Time: t0.Add(time.Second), Action: proxy.ActionTunnel, Method: "CONNECT", Host: "registry.npmjs.org",
			Port: 443, Status: 200, ReqBytes: 1, RespBytes: 1 << 40, Duration: 3 * time.Second},
		{Time: t0.Add(2 * time.Second), Action: proxy.ActionLeakBlocked, Method: "PUT", Scheme: "https",
			Host: "evil.test", Port: 443, Path: "/upload", Credential: "github", Status: 403,
			Retried: true, Redacted: true, Warning: "w", Error: "e"},
	}
	for _, r := range recs {
		if err := l.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadLog(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d entries, want %d", len(got), len(recs))
	}
	for i, r := range recs {
		want := NewEntry("av-rt", int64(i+1), r)
		if !got[i].Time.Equal(want.Time) {
			t.Errorf("entry %d: time %v, want %v", i, got[i].Time, want.Time)
		}
		got[i].Time, want.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, got[i], want)
		}
		back := got[i].Record()
		back.Time = r.Time
		if !reflect.DeepEqual(back, r) {
			t.Errorf("entry %d Record():\n got %+v\nwant %+v", i, back, r)
		}
	}
}

func TestReadLog(t *testing.T) {
	good := func(seq int) string {
		return `{"ts":"2026-11-28T14:03:07.123456Z","session":"s","seq":` + string(rune('0'+seq)) + `,"action":"pass","host":"h","port":443}`
	}
	tests := []struct {
		name    string
		in      string
		seqs    []int64
		wantErr []string // substrings of the error; nil = no error
	}{
		{"empty", "", nil, nil},
		{"two lines", good(1) + "\n" + good(2) + "\n", []int64{1, 2}, nil},
		{"last line without newline but whole", good(1) + "\n" + good(2), []int64{1, 2}, nil},
		{"truncated last line tolerated", good(1) + "\n" + good(2)[:40], []int64{1}, nil},
		{"blank lines and CRLF", "\n" + good(1) + "\r\n\n" + good(2) + "\r\n", []int64{1, 2}, nil},
		{"bad middle line", good(1) + "\n{not json\n" + good(3) + "\n", []int64{1, 3}, []string{"line 2:"}},
		{"truncated line in the middle is not tolerated", good(1)[:30] + "\n" + good(2) + "\n", []int64{2}, []string{"line 1:"}},
		{"missing ts", `{"session":"s","seq":1}` + "\n", nil, []string{"line 1:", `missing "ts"`}},
		{"bad ts", `{"ts":"yesterday","seq":1}` + "\n", nil, []string{"line 1:", `bad "ts"`}},
		{"wrong type", `{"ts":"2026-11-28T14:03:07Z","seq":"x"}` + "\n" + good(2) + "\n", []int64{2}, []string{"line 1:"}},
		{"several bad lines", "x\n" + good(2) + "\ny\nz\n", []int64{2}, []string{"line 1:", "line 3:", "line 4:"}},
		{"over-long line", good(1) + "\n" + `{"ts":"` + strings.Repeat("a", maxLine+10) + "\"}\n" + good(3) + "\n",
			[]int64{1, 3}, []string{"line 2:", "longer than 1 MiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadLog(strings.NewReader(tt.in))
			var seqs []int64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			if !reflect.DeepEqual(seqs, tt.seqs) {
				t.Errorf("seqs %v, want %v", seqs, tt.seqs)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestReadLogCapsReportedLines(t *testing.T) {
	in := strings.Repeat("bad\n", maxReported+5)
	_, err := ReadLog(strings.NewReader(in))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "and 5 more bad lines") || strings.Contains(msg, "line 11:") {
		t.Errorf("error does not cap the list: %q", msg)
	}
}

type failingReader struct{ after *bytes.Reader }

func (f failingReader) Read(p []byte) (int, error) {
	if f.after.Len() > 0 {
		return f.after.Read(p)
	}
	return 0, os.ErrPermission
}

func TestReadLogReadError(t *testing.T) {
	got, err := ReadLog(failingReader{bytes.NewReader([]byte(`{"ts":"2026-11-28T14:03:07Z","seq":1}` + "\n"))})
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %v, want a read error at line 2", err)
	}
	if len(got) != 1 {
		t.Errorf("%d entries before the error, want 1", len(got))
	}
}
