package redact

import (
	"encoding/base64"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestRedactorMasksEveryForm(t *testing.T) {
	const secret = "s3cr/et+Val&ue=Zq9"
	const ph = "PH-placeholder-XYZ"
	var r Redactor
	r.AddSecret("api", secret)
	r.AddPlaceholder("api", ph)
	cases := map[string]string{
		"raw":              "error: got " + secret + " back",
		"query escape":     "path?x=" + url.QueryEscape(secret),
		"path escape":      "/v1/" + url.PathEscape(secret) + "/x",
		"lower-case hex":   lowerHex(url.QueryEscape(secret)),
		"percent all":      "q=" + percentAll(secret),
		"lower hex all":    "q=" + lowerHex(percentAll(secret)),
		"basic auth":       "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+secret)),
		"base64 url":       base64.URLEncoding.EncodeToString([]byte("ab" + secret + "cd")),
		"lower-case host":  strings.ToLower(ph) + ".evil.test",
		"placeholder":      "Bearer " + ph,
		"secret in a host": strings.ToLower(secret) + ".evil.test",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			out := r.String(text)
			for _, f := range append(Forms(secret), Forms(ph)...) {
				if strings.Contains(out, f) {
					t.Fatalf("%q still holds the form %q", out, f)
				}
			}
			if !strings.Contains(out, "[api") {
				t.Fatalf("%q names no credential", out)
			}
		})
	}
}

func TestRedactorStyleAndRotation(t *testing.T) {
	var r Redactor
	if got := r.String("nothing known"); got != "nothing known" {
		t.Fatalf("empty redactor changed text: %q", got)
	}
	r.AddSecret("gh", "old-value-1234567")
	r.AddSecret("gh", "new-value-7654321")
	r.AddPlaceholder("gh", "ghp_PLACEHOLDER")
	got := r.String("old-value-1234567 new-value-7654321 ghp_PLACEHOLDER")
	if want := "[gh] [gh] [gh placeholder]"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	var nilR *Redactor
	if nilR.String("x") != "x" {
		t.Fatal("nil redactor must pass text through")
	}
}

// A short value is masked raw but its derived forms are not: lower-casing
// or encoding "ab" would blank out ordinary words.
func TestShortValues(t *testing.T) {
	var r Redactor
	r.AddSecret("pin", "Ab1")
	if got := r.String("x Ab1 ab1 QWIx"); got != "x [pin] ab1 QWIx" {
		t.Fatalf("got %q", got)
	}
}

func TestRedactorConcurrent(t *testing.T) {
	var r Redactor
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v := strings.Repeat(string(rune('a'+i)), 12)
			r.AddSecret("c", v)
			if strings.Contains(r.String("x"+v+"x"), v) {
				t.Errorf("value %d not masked right after it was added", i)
			}
		}(i)
	}
	wg.Wait()
}

func FuzzRedactor(f *testing.F) {
	f.Add("s3cr/et+Val&ue", "prefix ")
	f.Add("aaaa", "aaaaaaaa")
	f.Fuzz(func(t *testing.T, secret, text string) {
		if len(secret) < minDerived || strings.ContainsAny(secret, "[]") {
			return
		}
		var r Redactor
		r.AddSecret("x", secret)
		if out := r.String(text + secret + text); strings.Contains(out, secret) {
			t.Fatalf("raw secret survived: %q", out)
		}
	})
}
