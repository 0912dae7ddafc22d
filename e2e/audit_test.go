package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// auditFields are the keys every audit record carries (docs/audit.md).
var auditFields = []string{"ts", "session", "seq", "action", "method", "scheme", "host", "port", "path",
	"credential", "status", "req_bytes", "resp_bytes", "duration_ms", "retried", "redacted", "warning", "error"}

// TestAuditAndSummary: the JSON Lines log names every host, and no form of
// the exit summary leaks a secret or a placeholder.
func TestAuditAndSummary(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	for _, format := range []string{"plain", "markdown", "json"} {
		t.Run(format, func(t *testing.T) {
			secret := newSecret(t, "api")
			up := newUpstream(t, true)
			stepSummary := writeFile(t, t.TempDir(), "step-summary.md", "existing content\n")
			s := runSession(t, sessionOpts{
				config: apiConfig,
				env:    map[string]string{"TEST_API_TOKEN": secret, "GITHUB_STEP_SUMMARY": stepSummary},
				flags:  []string{"--summary", format},
				connect: []string{connectTo("api.example.test", 443, up.Port),
					connectTo("other.example.test", 443, up.Port)},
				script: curlTo("a1", "https://api.example.test/ok/audit?v=audit-query-value") +
					curlTo("a2", "https://api.example.test/no-such-route") +
					curlTo("o1", "https://other.example.test/ok/tunnelled"),
			})
			if s.code != 0 {
				t.Fatalf("exit %d", s.code)
			}
			ph := s.placeholder(t, "API_TOKEN")
			session := s.childEnv["AGENTVAULT_SESSION"]
			checkAuditLog(t, s, session)

			// The summary names the session, the command and each host.
			for _, want := range []string{session, "api.example.test", "other.example.test"} {
				if !strings.Contains(s.stderr, want) {
					t.Errorf("%s summary lacks %q:\n%s", format, want, clip(s.stderr))
				}
			}
			switch format {
			case "plain":
				if strings.Contains(s.stderr, "\x1b[") {
					t.Error("plain summary has ANSI escapes")
				}
			case "markdown":
				if !strings.Contains(s.stderr, "|") || !strings.Contains(s.stderr, "---") {
					t.Errorf("markdown summary has no table:\n%s", clip(s.stderr))
				}
			case "json":
				if _, err := lastJSONObject(s.stderr); err != nil {
					t.Errorf("json summary: %v:\n%s", err, clip(s.stderr))
				}
			}
			step := readFileOr(stepSummary, "")
			if !strings.HasPrefix(step, "existing content\n") || !strings.Contains(step, "api.example.test") ||
				!strings.Contains(step, "|") {
				t.Errorf("GITHUB_STEP_SUMMARY not appended with a markdown summary:\n%s", clip(step))
			}
			for where, text := range map[string]string{"step summary": step} {
				if strings.Contains(text, secret) || strings.Contains(text, ph) {
					t.Errorf("%s holds the secret or the placeholder", where)
				}
			}
			s.assertNoSecret(t, secret)
			s.assertNoPlaceholder(t, ph)

			// `agentvault audit` renders the saved log.
			for _, f := range []string{"table", "markdown", "json"} {
				stdout, stderr, code := run(t, nil, "audit", "--format", f, s.auditPath)
				if code != 0 || !strings.Contains(stdout, "api.example.test") {
					t.Errorf("audit --format %s: exit %d, stdout %q, stderr %q", f, code, clip(stdout), clip(stderr))
				}
				if f == "json" && !json.Valid([]byte(strings.TrimSpace(stdout))) {
					t.Errorf("audit --format json: output is not one JSON document")
				}
			}
		})
	}
}

func checkAuditLog(t *testing.T, s *session, session string) {
	t.Helper()
	if len(s.audit) == 0 {
		t.Fatal("audit log is empty")
	}
	hosts := map[string]bool{}
	prevSeq := -1.0
	for i, r := range s.audit {
		for _, k := range auditFields {
			if _, ok := r[k]; !ok {
				t.Errorf("record %d lacks %q: %v", i, k, r)
			}
		}
		if ts, _ := r["ts"].(string); ts != "" {
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("record %d: ts %q is not RFC 3339", i, ts)
			}
		}
		if r["session"] != session {
			t.Errorf("record %d: session %v, want %q", i, r["session"], session)
		}
		if seq, _ := r["seq"].(float64); seq <= prevSeq {
			t.Errorf("record %d: seq %v not increasing", i, r["seq"])
		} else {
			prevSeq = seq
		}
		if p, _ := r["path"].(string); strings.Contains(p, "?") {
			t.Errorf("record %d: path carries a query: %q", i, p)
		}
		hosts[fmt.Sprint(r["host"])] = true
	}
	if strings.Contains(s.auditRaw, "audit-query-value") {
		t.Error("audit log holds a query string value")
	}
	for _, h := range []string{"api.example.test", "other.example.test"} {
		if !hosts[h] {
			t.Errorf("audit log does not name %s:\n%s", h, s.auditRaw)
		}
	}
	if len(auditFind(s.audit, map[string]any{"action": "inject", "path": "/ok/audit", "status": 200, "credential": "api"})) != 1 {
		t.Errorf("no inject record for /ok/audit with status 200")
	}
	if len(auditFind(s.audit, map[string]any{"path": "/no-such-route", "status": 404})) != 1 {
		t.Errorf("no record for /no-such-route with status 404")
	}
	for _, r := range auditFind(s.audit, map[string]any{"action": "tunnel", "host": "other.example.test"}) {
		if rb, _ := r["req_bytes"].(float64); rb <= 0 {
			t.Errorf("tunnel record without request bytes: %v", r)
		}
		if rb, _ := r["resp_bytes"].(float64); rb <= 0 {
			t.Errorf("tunnel record without response bytes: %v", r)
		}
	}
}

// TestQuietAndNoSummary: -q and --summary off print no summary, even after
// a request a summary would list.
func TestQuietAndNoSummary(t *testing.T) {
	needBinary(t)
	needTestTool(t, "curl")
	for _, flags := range [][]string{{"-q"}, {"--quiet"}, {"--summary", "off"}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			up := newUpstream(t, true)
			s := runSession(t, sessionOpts{
				config:  apiConfig,
				env:     map[string]string{"TEST_API_TOKEN": newSecret(t, "api")},
				flags:   flags,
				connect: []string{connectTo("api.example.test", 443, up.Port)},
				script:  curlTo("r", "https://api.example.test/ok/quiet"),
			})
			if s.code != 0 {
				t.Fatalf("exit %d", s.code)
			}
			s.response(t, "r", "200")
			// A summary would list the host; -q also drops the banner
			// (which names the session), --summary off need not.
			if strings.Contains(s.stderr, "api.example.test") {
				t.Errorf("%v: stderr still has a summary:\n%s", flags, clip(s.stderr))
			}
			sess := s.childEnv["AGENTVAULT_SESSION"]
			if flags[0] != "--summary" && sess != "" && strings.Contains(s.stderr, sess) {
				t.Errorf("%v: stderr still has a banner:\n%s", flags, clip(s.stderr))
			}
		})
	}
}

// lastJSONObject finds a JSON object in text that may hold other lines.
func lastJSONObject(text string) (map[string]any, error) {
	for i := strings.Index(text, "{"); i >= 0; {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(text[i:]))
		if err := dec.Decode(&m); err == nil {
			return m, nil
		}
		next := strings.Index(text[i+1:], "{")
		if next < 0 {
			break
		}
		i += next + 1
	}
	return nil, fmt.Errorf("no JSON object found")
}
