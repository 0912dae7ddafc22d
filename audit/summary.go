package audit

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentvault/agentvault/proxy"
)

// ExitUnknown is Summary.ExitStatus when the exit status is not known, as
// for a summary rebuilt from a saved audit log.
const ExitUnknown = -1

// Summary is what the exit summary and `agentvault audit` show. Every string
// in it may come from outside (command line, hosts, record texts): renderers
// pass each through the caller's mask before printing.
type Summary struct {
	Session    string
	Command    []string
	Start      time.Time
	Duration   time.Duration
	ExitStatus int // ExitUnknown if not known
	Hosts      []HostRow
	Warnings   []string
	Notes      []string
}

// HostRow aggregates the records of one host:port.
type HostRow struct {
	Host        string
	Port        int
	Requests    int // every record: requests, tunnels, refusals
	Injected    int // records with action inject
	Credentials []string
	// Statuses counts records by status class: "1xx" ... "5xx", "ws" (a
	// WebSocket session: the proxy relays no other protocol switch),
	// "denied" (deny, auth_failed), "blocked" (leak_blocked), "error" (an
	// error with no status sent), "none" (no status sent).
	Statuses  map[string]int
	ReqBytes  int64
	RespBytes int64
	Actions   map[string]int
	// WebSocketTime adds up how long the host's WebSocket sessions stayed
	// open: their record is written when the session ends.
	WebSocketTime time.Duration
}

// maxKeys bounds each warning group's distinct keys so that a long session
// full of varied errors cannot grow the collector without limit; the
// surplus is still counted.
const maxKeys = 200

// Collector aggregates proxy records for the summary without keeping them.
// It is safe for concurrent use.
type Collector struct {
	mu       sync.Mutex
	first    time.Time
	hosts    map[hostKey]*hostAgg
	denied   counter // hostKey + reason
	authFail counter // hostKey + reason
	leaks    counter // hostKey + credential + reason
	rejected counter // hostKey + credential + status
	errs     counter // hostKey + reason
	redacted counter // hostKey + credential
	retried  counter // credential
	warnings counter // record warning text
}

type hostKey struct {
	host string
	port int
}

type hostAgg struct {
	row   HostRow
	creds map[string]bool
}

// groupKey is the key of every warning group; unused parts stay empty.
type groupKey struct {
	hostKey
	cred   string
	reason string
	status int
}

type counter struct {
	n        map[groupKey]int
	overflow int
}

func (c *counter) add(k groupKey) {
	if c.n == nil {
		c.n = make(map[groupKey]int)
	}
	if _, ok := c.n[k]; !ok && len(c.n) >= maxKeys {
		c.overflow++
		return
	}
	c.n[k]++
}

type counted struct {
	groupKey
	n int
}

// sorted orders by count, most frequent first, then by key, so the summary
// is the same however the records interleaved.
func (c *counter) sorted() []counted {
	out := make([]counted, 0, len(c.n))
	for k, n := range c.n {
		out = append(out, counted{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.n != b.n {
			return a.n > b.n
		}
		if a.host != b.host {
			return a.host < b.host
		}
		if a.port != b.port {
			return a.port < b.port
		}
		if a.cred != b.cred {
			return a.cred < b.cred
		}
		if a.status != b.status {
			return a.status < b.status
		}
		return a.reason < b.reason
	})
	return out
}

// NewCollector returns an empty Collector; the zero value works as well.
func NewCollector() *Collector { return &Collector{} }

// Add accounts for one record.
func (c *Collector) Add(r proxy.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !r.Time.IsZero() && (c.first.IsZero() || r.Time.Before(c.first)) {
		c.first = r.Time
	}
	hk := hostKey{r.Host, r.Port}
	if c.hosts == nil {
		c.hosts = make(map[hostKey]*hostAgg)
	}
	h := c.hosts[hk]
	if h == nil {
		h = &hostAgg{
			row: HostRow{
				Host: r.Host, Port: r.Port,
				Statuses: map[string]int{}, Actions: map[string]int{},
			},
			creds: map[string]bool{},
		}
		c.hosts[hk] = h
	}
	h.row.Requests++
	if r.Action == proxy.ActionInject {
		h.row.Injected++
	}
	if r.Credential != "" {
		h.creds[r.Credential] = true
	}
	class := statusClass(r)
	h.row.Statuses[class]++
	if class == classWebSocket {
		h.row.WebSocketTime += r.Duration
	}
	h.row.ReqBytes += r.ReqBytes
	h.row.RespBytes += r.RespBytes
	h.row.Actions[string(r.Action)]++

	switch r.Action {
	case proxy.ActionDeny:
		c.denied.add(groupKey{hostKey: hk, reason: r.Error})
	case proxy.ActionAuthFailed:
		c.authFail.add(groupKey{hostKey: hk, reason: r.Error})
	case proxy.ActionLeakBlocked:
		c.leaks.add(groupKey{hostKey: hk, cred: r.Credential, reason: r.Error})
	default:
		if r.Action == proxy.ActionError || r.Error != "" {
			c.errs.add(groupKey{hostKey: hk, reason: r.Error})
		}
	}
	if r.Action == proxy.ActionInject && (r.Status == 401 || r.Status == 403) {
		c.rejected.add(groupKey{hostKey: hk, cred: r.Credential, status: r.Status})
	}
	if r.Redacted {
		c.redacted.add(groupKey{hostKey: hk, cred: r.Credential})
	}
	if r.Retried {
		c.retried.add(groupKey{cred: r.Credential})
	}
	if r.Warning != "" {
		c.warnings.add(groupKey{reason: r.Warning})
	}
}

// Status classes besides "1xx" ... "5xx" (HostRow.Statuses).
const (
	// classWebSocket is a WebSocket session: a 101 the proxy relayed frame
	// by frame, its bytes counted both ways after the upgrade.
	classWebSocket = "ws"
	classDenied    = "denied"  // deny, auth_failed
	classBlocked   = "blocked" // leak_blocked
	classTunnel    = "tunnel"  // a plain tunnel: the upstream's answers are encrypted
	classError     = "error"   // an error with no status sent
	classNone      = "none"    // no status sent
)

// statusClass buckets a record for HostRow.Statuses.
func statusClass(r proxy.Record) string {
	switch r.Action {
	case proxy.ActionDeny, proxy.ActionAuthFailed:
		return classDenied
	case proxy.ActionLeakBlocked:
		return classBlocked
	case proxy.ActionTunnel:
		// A tunnel's status is the proxy's own 200 to the CONNECT; what the
		// upstream answered inside it is encrypted and unknown.
		return classTunnel
	}
	if r.Status == http.StatusSwitchingProtocols {
		return classWebSocket
	}
	if r.Status >= 100 && r.Status <= 599 {
		return fmt.Sprintf("%dxx", r.Status/100)
	}
	if r.Action == proxy.ActionError {
		return classError
	}
	return classNone
}

// Summary returns base with Hosts filled in (most requests first, then by
// name and port) and the warnings derived from the records appended to
// base.Warnings, duplicates removed. base.Start defaults to the first
// record's time. The Collector can keep collecting afterwards.
func (c *Collector) Summary(base Summary) Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := base
	if s.Start.IsZero() {
		s.Start = c.first
	}
	s.Command = slices.Clone(base.Command)
	s.Notes = slices.Clone(base.Notes)

	s.Hosts = make([]HostRow, 0, len(c.hosts))
	for _, h := range c.hosts {
		row := h.row
		row.Statuses = cloneMap(h.row.Statuses)
		row.Actions = cloneMap(h.row.Actions)
		row.Credentials = make([]string, 0, len(h.creds))
		for name := range h.creds {
			row.Credentials = append(row.Credentials, name)
		}
		sort.Strings(row.Credentials)
		s.Hosts = append(s.Hosts, row)
	}
	sort.Slice(s.Hosts, func(i, j int) bool {
		a, b := s.Hosts[i], s.Hosts[j]
		if a.Requests != b.Requests {
			return a.Requests > b.Requests
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.Port < b.Port
	})

	warnings := slices.Clone(base.Warnings)
	warnings = append(warnings, c.derivedWarnings()...)
	s.Warnings = dedupe(warnings)
	return s
}

// derivedWarnings lists, most severe group first: leaks blocked, denied
// hosts, proxy auth failures, credentials the upstream refused, errors,
// redactions, re-resolved credentials, then the records' own warnings.
func (c *Collector) derivedWarnings() []string {
	var out []string
	add := func(g *counter, f func(counted) string, what string) {
		for _, k := range g.sorted() {
			out = append(out, f(k))
		}
		if g.overflow > 0 {
			out = append(out, fmt.Sprintf("%s: %s not itemized", what, plural(g.overflow, "more record")))
		}
	}
	add(&c.leaks, func(k counted) string {
		cred := "a secret"
		if k.cred != "" {
			cred = fmt.Sprintf("the secret of %q", k.cred)
		}
		return withReason(fmt.Sprintf("leak blocked: %s to %s carried %s",
			plural(k.n, "request"), hostPort(k.host, k.port), cred), k.reason)
	}, "leak blocked")
	add(&c.denied, func(k counted) string {
		return withReason(fmt.Sprintf("denied: %s (%s)", hostPort(k.host, k.port), plural(k.n, "request")), k.reason)
	}, "denied")
	add(&c.authFail, func(k counted) string {
		return withReason(fmt.Sprintf("proxy password missing or wrong: %s to %s",
			plural(k.n, "request"), hostPort(k.host, k.port)), k.reason)
	}, "proxy authentication")
	add(&c.rejected, func(k counted) string {
		return fmt.Sprintf("credential %q rejected: %s answered %d (%s)",
			k.cred, hostPort(k.host, k.port), k.status, plural(k.n, "request"))
	}, "rejected")
	add(&c.errs, func(k counted) string {
		return withReason(fmt.Sprintf("error: %s to %s", plural(k.n, "request"), hostPort(k.host, k.port)), k.reason)
	}, "error")
	add(&c.redacted, func(k counted) string {
		cred := "a secret"
		if k.cred != "" {
			cred = fmt.Sprintf("the secret of %q", k.cred)
		}
		return fmt.Sprintf("redacted: %s from %s reflected %s", plural(k.n, "response"), hostPort(k.host, k.port), cred)
	}, "redacted")
	add(&c.retried, func(k counted) string {
		return fmt.Sprintf("credential %q re-resolved after a refusal: %s retried", k.cred, plural(k.n, "request"))
	}, "re-resolved")
	add(&c.warnings, func(k counted) string {
		if k.n == 1 {
			return k.reason
		}
		return fmt.Sprintf("%s (%d times)", k.reason, k.n)
	}, "warnings")
	return out
}

func withReason(s, reason string) string {
	if reason == "" {
		return s
	}
	return s + ": " + reason
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// hostPort shows the port only when it is not HTTPS's default, which is
// what almost every row has.
func hostPort(host string, port int) string {
	if host == "" {
		host = "(unknown host)"
	}
	if port == 443 || port == 0 {
		return host
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func dedupe(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

func cloneMap(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// FromEntries rebuilds a summary from saved log entries, as `agentvault
// audit` shows it. The command and exit status are not in the log, so
// Command stays empty and ExitStatus is ExitUnknown; Start and Duration span
// the entries. Entries of several sessions are merged (Session lists them
// all); use BySession to summarize each session on its own.
func FromEntries(entries []Entry) Summary {
	var (
		c        Collector
		sessions []string
		seen     = map[string]bool{}
		start    time.Time
		end      time.Time
	)
	for _, e := range entries {
		r := e.Record()
		c.Add(r)
		if !seen[e.Session] {
			seen[e.Session] = true
			sessions = append(sessions, e.Session)
		}
		if start.IsZero() || r.Time.Before(start) {
			start = r.Time
		}
		if t := r.Time.Add(r.Duration); t.After(end) {
			end = t
		}
	}
	base := Summary{
		Session:    strings.Join(sessions, ", "),
		Start:      start,
		ExitStatus: ExitUnknown,
	}
	if !start.IsZero() {
		base.Duration = end.Sub(start)
	}
	if len(sessions) > 1 {
		base.Notes = []string{fmt.Sprintf("%d sessions in this log, summarized together", len(sessions))}
	}
	return c.Summary(base)
}

// BySession splits entries by session id, in order of each session's first
// entry, keeping the entries' order within a session.
func BySession(entries []Entry) [][]Entry {
	idx := map[string]int{}
	var out [][]Entry
	for _, e := range entries {
		i, ok := idx[e.Session]
		if !ok {
			i = len(out)
			idx[e.Session] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], e)
	}
	return out
}
