package proxy

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawConnect sends one CONNECT with the session password and returns the
// proxy's answer.
func rawConnect(t *testing.T, h *harness, target string) *http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", target, target, basicAuthValue("agentvault", testPassword))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestRecordsNeverCarryPlaceholdersOrSecrets: a hostile agent puts its
// placeholder (or a secret's encodings) where the proxy echoes text: the
// CONNECT host name (case-folded on the way), refusal texts. None of them
// may reach a record or a body the agent reads.
func TestRecordsNeverCarryPlaceholdersOrSecrets(t *testing.T) {
	const ph = "PH-Mask-AbCdEf0123"
	const secretVal = "Sec/ret+Value=XyZ0987"
	up := newTestCA(t, "upstream")
	cred := &Credential{Name: "api", Placeholder: ph, Hosts: []string{"api.example.test"}, Secret: staticSecret(secretVal)}
	h := startProxy(t, up, []*Credential{cred}, Egress{DefaultDeny: true}, nil)

	forbidden := func(t *testing.T, what, s string) {
		t.Helper()
		for _, f := range []string{ph, strings.ToLower(ph), secretVal, strings.ToLower(secretVal), url.QueryEscape(secretVal),
			lowerPercent(url.QueryEscape(secretVal)), base64.StdEncoding.EncodeToString([]byte(secretVal))} {
			if strings.Contains(s, f) {
				t.Errorf("%s carries %q: %q", what, f, s)
			}
		}
	}

	t.Run("placeholder in the CONNECT name", func(t *testing.T) {
		res := rawConnect(t, h, ph+".evil.test:443")
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", res.StatusCode)
		}
		forbidden(t, "refusal body", string(body))
		recs := h.waitRecords(t, 1)
		r := recs[len(recs)-1]
		forbidden(t, "record host", r.Host)
		forbidden(t, "record warning", r.Warning)
		if !strings.Contains(r.Host, "[api placeholder]") {
			t.Errorf("host %q should name the masked placeholder", r.Host)
		}
	})

	cases := map[string]string{
		"raw":           "upstream said " + secretVal,
		"query-escaped": "upstream said " + url.QueryEscape(secretVal),
		"lower-hex":     "upstream said " + lowerPercent(url.QueryEscape(secretVal)),
		"basic":         "upstream said Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+secretVal)),
		"placeholder":   "upstream said " + ph,
	}
	for name, why := range cases {
		t.Run("refusal "+name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "https://api.example.test/", nil)
			ex := &exchange{}
			res := h.p.refusal(req, ex, http.StatusBadGateway, ActionError, why)
			body, _ := io.ReadAll(res.Body)
			forbidden(t, "body", string(body))
			h.p.emit(ex.rec)
			recs := h.recs()
			forbidden(t, "record error", recs[len(recs)-1].Error)
		})
	}
}

// TestRotatedValuesMasked: once the credential takes a new value, refusals
// mask the new value and still mask the old one.
func TestRotatedValuesMasked(t *testing.T) {
	var cur atomic.Value
	cur.Store("first-secret-value-111")
	up := newTestCA(t, "upstream")
	cred := &Credential{Name: "api", Placeholder: "PH-rot-0000", Hosts: []string{"api.example.test"},
		Secret: func() string { return cur.Load().(string) }}
	h := startProxy(t, up, []*Credential{cred}, Egress{}, nil)
	cur.Store("second-secret-value-222")
	// Any guard pass reads the credential's current value.
	h.p.policy.creds[0].values()
	req, _ := http.NewRequest("GET", "https://api.example.test/", nil)
	res := h.p.refusal(req, &exchange{}, http.StatusBadGateway, ActionError, "first-secret-value-111 second-secret-value-222")
	body, _ := io.ReadAll(res.Body)
	if strings.Contains(string(body), "secret-value") {
		t.Fatalf("body %q", body)
	}
}

// lowerPercent writes the hex digits of %XX escapes in lower case, as some
// encoders do.
func lowerPercent(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = strings.ToLower(string(b[i+1]))[0], strings.ToLower(string(b[i+2]))[0]
			i += 2
		}
	}
	return string(b)
}
