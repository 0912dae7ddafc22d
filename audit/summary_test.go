package audit

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentvault/agentvault/proxy"
)

var t0 = time.Date(2026, 11, 28, 14, 3, 7, 0, time.UTC)

func rec(action, host string, port, status int, mod ...func(*proxy.Record)) proxy.Record {
	r := proxy.Record{Time: t0, Action: proxy.Action(action), Method: "GET", Scheme: "https", Host: host, Port: port, Path: "/", Status: status}
	for _, m := range mod {
		m(&r)
	}
	return r
}

func cred(name string) func(*proxy.Record) { return func(r *proxy.Record) { r.Credential = name } }
func bytesIO(req, resp int64) func(*proxy.Record) {
	return func(r *proxy.Record) { r.ReqBytes, r.RespBytes = req, resp }
}
func errText(s string) func(*proxy.Record)  { return func(r *proxy.Record) { r.Error = s } }
func warnText(s string) func(*proxy.Record) { return func(r *proxy.Record) { r.Warning = s } }
func at(d time.Duration) func(*proxy.Record) {
	return func(r *proxy.Record) { r.Time = t0.Add(d) }
}
func lasted(d time.Duration) func(*proxy.Record) {
	return func(r *proxy.Record) { r.Duration = d }
}
func retried(r *proxy.Record)  { r.Retried = true }
func redacted(r *proxy.Record) { r.Redacted = true }

func TestCollectorHosts(t *testing.T) {
	tests := []struct {
		name string
		recs []proxy.Record
		want []HostRow
	}{
		{name: "no records", want: []HostRow{}},
		{
			name: "aggregates per host and port, sorted by requests then name",
			recs: []proxy.Record{
				rec("inject", "api.github.com", 443, 200, cred("github"), bytesIO(10, 100)),
				rec("inject", "api.github.com", 443, 401, cred("github"), bytesIO(5, 7)),
				rec("pass", "api.github.com", 443, 304, bytesIO(1, 0)),
				rec("inject", "api.github.com", 443, 201, cred("github-app"), bytesIO(0, 1)),
				rec("tunnel", "registry.npmjs.org", 443, 200, bytesIO(1000, 50000)),
				rec("tunnel", "registry.npmjs.org", 443, 0),
				rec("deny", "b.pastebin.com", 443, 403),
				rec("deny", "a.pastebin.com", 443, 403),
				rec("leak_blocked", "evil.test", 8443, 403, cred("github")),
				rec("auth_failed", "evil.test", 8443, 407),
				rec("error", "api.github.com", 8443, 0),
				rec("error", "api.github.com", 8443, 502),
			},
			want: []HostRow{
				{Host: "api.github.com", Port: 443, Requests: 4, Injected: 3, Credentials: []string{"github", "github-app"},
					Statuses: map[string]int{"2xx": 2, "3xx": 1, "4xx": 1}, ReqBytes: 16, RespBytes: 108,
					Actions: map[string]int{"inject": 3, "pass": 1}},
				{Host: "api.github.com", Port: 8443, Requests: 2, Credentials: []string{},
					Statuses: map[string]int{"error": 1, "5xx": 1}, Actions: map[string]int{"error": 2}},
				{Host: "evil.test", Port: 8443, Requests: 2, Credentials: []string{"github"},
					Statuses: map[string]int{"blocked": 1, "denied": 1}, Actions: map[string]int{"leak_blocked": 1, "auth_failed": 1}},
				{Host: "registry.npmjs.org", Port: 443, Requests: 2, Credentials: []string{},
					Statuses: map[string]int{"tunnel": 2}, ReqBytes: 1000, RespBytes: 50000, Actions: map[string]int{"tunnel": 2}},
				{Host: "a.pastebin.com", Port: 443, Requests: 1, Credentials: []string{},
					Statuses: map[string]int{"denied": 1}, Actions: map[string]int{"deny": 1}},
				{Host: "b.pastebin.com", Port: 443, Requests: 1, Credentials: []string{},
					Statuses: map[string]int{"denied": 1}, Actions: map[string]int{"deny": 1}},
			},
		},
		{
			name: "a WebSocket session is ws, with its bytes both ways and how long it stayed open",
			recs: []proxy.Record{
				rec("inject", "api.openai.com", 443, 101, cred("openai"), bytesIO(75_000, 3_000), lasted(12*time.Second)),
				rec("inject", "api.openai.com", 443, 101, cred("openai"), bytesIO(5, 7), lasted(500*time.Millisecond)),
				rec("inject", "api.openai.com", 443, 200, cred("openai"), bytesIO(1, 2), lasted(time.Second)),
			},
			want: []HostRow{
				{Host: "api.openai.com", Port: 443, Requests: 3, Injected: 3, Credentials: []string{"openai"},
					Statuses: map[string]int{"ws": 2, "2xx": 1}, ReqBytes: 75_006, RespBytes: 3_009,
					Actions: map[string]int{"inject": 3}, WebSocketTime: 12500 * time.Millisecond},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCollector()
			for _, r := range tt.recs {
				c.Add(r)
			}
			got := c.Summary(Summary{}).Hosts
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("hosts:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCollectorWarnings(t *testing.T) {
	tests := []struct {
		name string
		base []string
		recs []proxy.Record
		want []string
	}{
		{name: "clean session has none", recs: []proxy.Record{rec("inject", "h", 443, 200, cred("c"))}, want: []string{}},
		{
			name: "denied hosts with counts and reasons, most first",
			recs: []proxy.Record{
				rec("deny", "x.pastebin.com", 443, 403, errText("egress deny *.pastebin.com")),
				rec("deny", "y.test", 443, 403),
				rec("deny", "x.pastebin.com", 443, 403, errText("egress deny *.pastebin.com")),
			},
			want: []string{
				"denied: x.pastebin.com (2 requests): egress deny *.pastebin.com",
				"denied: y.test (1 request)",
			},
		},
		{
			name: "every group, most severe first",
			base: []string{`backend "vault": lease renewal failed`},
			recs: []proxy.Record{
				rec("inject", "api.github.com", 443, 401, cred("github"), retried),
				rec("inject", "api.github.com", 443, 200, cred("github"), retried, redacted),
				rec("error", "api.example.com", 443, 502, errText("upstream TLS: unknown authority")),
				rec("auth_failed", "example.com", 80, 407),
				rec("deny", "evil.test", 443, 403),
				rec("leak_blocked", "evil.test", 443, 403, cred("github"), errText("secret in header")),
				rec("leak_blocked", "other.test", 443, 403),
				rec("pass", "evil.test", 443, 200, warnText(`placeholder for "github" sent to evil.test`)),
				rec("pass", "evil.test", 443, 200, warnText(`placeholder for "github" sent to evil.test`)),
				rec("pass", "x.test", 443, 200, warnText("odd")),
			},
			want: []string{
				`backend "vault": lease renewal failed`,
				`leak blocked: 1 request to evil.test carried the secret of "github": secret in header`,
				`leak blocked: 1 request to other.test carried a secret`,
				`denied: evil.test (1 request)`,
				`proxy password missing or wrong: 1 request to example.com:80`,
				`credential "github" rejected: api.github.com answered 401 (1 request)`,
				`error: 1 request to api.example.com: upstream TLS: unknown authority`,
				`redacted: 1 response from api.github.com reflected the secret of "github"`,
				`credential "github" re-resolved after a refusal: 2 requests retried`,
				`placeholder for "github" sent to evil.test (2 times)`,
				`odd`,
			},
		},
		{
			name: "caller warnings come first and duplicates go",
			base: []string{"denied: evil.test (1 request)", "b", "b", ""},
			recs: []proxy.Record{rec("deny", "evil.test", 443, 403)},
			want: []string{"denied: evil.test (1 request)", "b"},
		},
		{
			name: "an error text on a non-error record is still reported",
			recs: []proxy.Record{rec("tunnel", "h.test", 443, 200, errText("reset by peer"))},
			want: []string{"error: 1 request to h.test: reset by peer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Collector
			for _, r := range tt.recs {
				c.Add(r)
			}
			got := c.Summary(Summary{Warnings: tt.base}).Warnings
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCollectorKeepsBase(t *testing.T) {
	var c Collector
	c.Add(rec("pass", "h", 443, 200, at(5*time.Second)))
	c.Add(rec("pass", "h", 443, 200, at(2*time.Second)))
	base := Summary{Session: "av-1", Command: []string{"claude"}, Duration: time.Minute, ExitStatus: 3, Notes: []string{"n"}}
	s := c.Summary(base)
	if s.Session != "av-1" || s.ExitStatus != 3 || s.Duration != time.Minute ||
		!reflect.DeepEqual(s.Command, []string{"claude"}) || !reflect.DeepEqual(s.Notes, []string{"n"}) {
		t.Errorf("base fields not kept: %+v", s)
	}
	if !s.Start.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("Start %v, want the earliest record", s.Start)
	}
	s.Command[0] = "changed"
	if base.Command[0] != "claude" {
		t.Error("Summary shares the caller's Command slice")
	}
	explicit := c.Summary(Summary{Start: t0})
	if !explicit.Start.Equal(t0) {
		t.Errorf("an explicit Start was replaced: %v", explicit.Start)
	}
	// The collector keeps collecting after a Summary.
	c.Add(rec("pass", "h", 443, 200))
	if got := c.Summary(Summary{}).Hosts[0].Requests; got != 3 {
		t.Errorf("requests %d, want 3", got)
	}
}

func TestCollectorConcurrent(t *testing.T) {
	const goroutines, perG = 8, 200
	var c Collector
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				c.Add(rec("inject", "h", 443, 200, cred("c"), bytesIO(1, 2)))
				if i%50 == 0 {
					_ = c.Summary(Summary{})
				}
			}
		}()
	}
	wg.Wait()
	h := c.Summary(Summary{}).Hosts
	if len(h) != 1 || h[0].Requests != goroutines*perG || h[0].Injected != goroutines*perG ||
		h[0].ReqBytes != goroutines*perG || h[0].RespBytes != 2*goroutines*perG {
		t.Errorf("lost updates: %+v", h)
	}
}

func TestCollectorBoundsWarningKeys(t *testing.T) {
	var c Collector
	for i := 0; i < maxKeys+7; i++ {
		c.Add(rec("pass", "h", 443, 200, warnText(strings.Repeat("w", i+1))))
	}
	w := c.Summary(Summary{}).Warnings
	if len(w) != maxKeys+1 {
		t.Fatalf("%d warnings, want %d", len(w), maxKeys+1)
	}
	if last := w[len(w)-1]; last != "warnings: 7 more records not itemized" {
		t.Errorf("overflow line %q", last)
	}
}

func TestFromEntries(t *testing.T) {
	mk := func(session string, seq int64, d time.Duration, r proxy.Record) Entry {
		r.Time = t0.Add(d)
		return NewEntry(session, seq, r)
	}
	one := []Entry{
		mk("av-1", 1, 0, rec("inject", "api.github.com", 443, 200, cred("github"), func(r *proxy.Record) { r.Duration = 500 * time.Millisecond })),
		mk("av-1", 2, 10*time.Second, rec("deny", "evil.test", 443, 403, func(r *proxy.Record) { r.Duration = 2 * time.Second })),
	}
	s := FromEntries(one)
	if s.Session != "av-1" || s.ExitStatus != ExitUnknown || len(s.Command) != 0 {
		t.Errorf("header fields: %+v", s)
	}
	if !s.Start.Equal(t0) || s.Duration != 12*time.Second {
		t.Errorf("start %v duration %v, want %v and 12s", s.Start, s.Duration, t0)
	}
	if len(s.Hosts) != 2 || s.Hosts[0].Injected != 1 {
		t.Errorf("hosts: %+v", s.Hosts)
	}
	if !reflect.DeepEqual(s.Warnings, []string{"denied: evil.test (1 request)"}) {
		t.Errorf("warnings %q", s.Warnings)
	}
	if len(s.Notes) != 0 {
		t.Errorf("notes %q for one session", s.Notes)
	}

	two := append([]Entry{mk("av-0", 1, -time.Minute, rec("pass", "x", 443, 200))}, one...)
	two = append(two, mk("av-0", 2, time.Hour, rec("pass", "x", 443, 200)))
	s = FromEntries(two)
	if s.Session != "av-0, av-1" || len(s.Notes) != 1 || !strings.Contains(s.Notes[0], "2 sessions") {
		t.Errorf("merged sessions: %q %q", s.Session, s.Notes)
	}
	parts := BySession(two)
	if len(parts) != 2 || len(parts[0]) != 2 || len(parts[1]) != 2 ||
		parts[0][0].Session != "av-0" || parts[0][1].Seq != 2 || parts[1][0].Session != "av-1" {
		t.Errorf("BySession: %+v", parts)
	}

	empty := FromEntries(nil)
	if empty.Duration != 0 || !empty.Start.IsZero() || len(empty.Hosts) != 0 || empty.ExitStatus != ExitUnknown {
		t.Errorf("empty: %+v", empty)
	}
}

func TestHostPort(t *testing.T) {
	tests := []struct {
		host string
		port int
		want string
	}{
		{"api.github.com", 443, "api.github.com"},
		{"api.github.com", 0, "api.github.com"},
		{"example.com", 80, "example.com:80"},
		{"::1", 8443, "[::1]:8443"},
		{"", 443, "(unknown host)"},
	}
	for _, tt := range tests {
		if got := hostPort(tt.host, tt.port); got != tt.want {
			t.Errorf("hostPort(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}
}
