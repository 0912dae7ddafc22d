package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strings"
	"unicode"
)

// RefusedError says why a token request or response was not let through.
// The agent gets neither the original nor a rewrite, only a failure.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "token endpoint exchange refused: " + e.Reason }

func refuse(format string, args ...any) error {
	return &RefusedError{Reason: fmt.Sprintf(format, args...)}
}

// Refresh is one refresh request the broker rewrote; its response must go
// through Response. A response is rewritten only for a request that
// carried one of the broker's own refresh placeholders, so an agent cannot
// refresh some other login through the broker and have its tokens taken
// for the user's.
type Refresh struct {
	b *Broker
}

// RewriteRequest rewrites a refresh request's body (JSON or
// application/x-www-form-urlencoded, by contentType): the placeholder
// refresh token becomes the real one. Anything else is refused: another
// grant (a login inside the session would bring real tokens back), a
// refresh token the broker did not hand out, a field given twice.
func (b *Broker) RewriteRequest(contentType string, body []byte) ([]byte, *Refresh, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, nil, refuse("request content type %q", contentType)
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return b.rewriteJSONRequest(body)
	case mt == "application/x-www-form-urlencoded":
		return b.rewriteFormRequest(body)
	}
	return nil, nil, refuse("request content type %q is neither JSON nor a form", mt)
}

func (b *Broker) rewriteJSONRequest(body []byte) ([]byte, *Refresh, error) {
	if err := noDuplicateKeys(body); err != nil {
		return nil, nil, refuse("request: %v", err)
	}
	req, err := decodeObject(body)
	if err != nil {
		return nil, nil, refuse("request: %v", err)
	}
	if g, _ := req["grant_type"].(string); g != "refresh_token" {
		return nil, nil, refuse("request grant_type %q; only refresh_token goes through", g)
	}
	ph, _ := req["refresh_token"].(string)
	real, err := b.realRefresh(ph)
	if err != nil {
		return nil, nil, err
	}
	req["refresh_token"] = real
	out, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	return out, &Refresh{b: b}, nil
}

func (b *Broker) rewriteFormRequest(body []byte) ([]byte, *Refresh, error) {
	q, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, nil, refuse("request form: %v", err)
	}
	folded := map[string]bool{}
	for k, v := range q {
		if len(v) > 1 || folded[foldKey(k)] {
			return nil, nil, refuse("request form gives %q more than once (up to case)", k)
		}
		folded[foldKey(k)] = true
	}
	if g := q.Get("grant_type"); g != "refresh_token" {
		return nil, nil, refuse("request grant_type %q; only refresh_token goes through", g)
	}
	real, err := b.realRefresh(q.Get("refresh_token"))
	if err != nil {
		return nil, nil, err
	}
	q.Set("refresh_token", real)
	return []byte(q.Encode()), &Refresh{b: b}, nil
}

// realRefresh maps the current refresh placeholder to its real token. An
// older one is refused, not sent: a rotated refresh token is at best
// rejected, and at an endpoint that detects reuse (a rotated token used
// again is taken for a stolen one) it revokes the whole login, logging the
// user out everywhere.
func (b *Broker) realRefresh(ph string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	real, ok := b.toReal[ph]
	if !ok || real != b.cur.refresh {
		return "", refuse("the request's refresh token is not the current one agentvault handed out")
	}
	return real, nil
}

// Response rewrites the token endpoint's answer to the refresh. A success
// (2xx) must be a JSON object with a non-empty access_token; refresh_token
// and id_token, when present, non-empty strings. Their real values are
// kept (for the proxy and the write-back) and the agent gets the answer
// with placeholders. An error answer must be a JSON object with "error".
// Either way the result is refused if any real token still shows through
// it, in any field, decoded or not; so is anything else.
func (r *Refresh) Response(status int, body []byte) ([]byte, error) {
	b := r.b
	resp, err := decodeObject(body)
	if err != nil {
		return nil, refuse("response (status %d): %v", status, err)
	}
	if status < 200 || status > 299 {
		if _, ok := resp["error"]; !ok {
			return nil, refuse("error response (status %d) without an \"error\" field", status)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if treeLeaks(resp, b.secrets) {
			return nil, refuse("error response (status %d) carries a real token", status)
		}
		return b.encode(resp)
	}
	next, meta, err := parseTokens(resp)
	if err != nil {
		return nil, err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	// Checked before the tokens are kept: another account's tokens must
	// never reach the write-back.
	if b.account != "" && b.format.answerAccounts != nil {
		for _, a := range b.format.answerAccounts(resp) {
			if a != "" && a != b.account {
				return nil, refuse("response is for another account than the login's")
			}
		}
	}
	if next.refresh == "" {
		next.refresh = b.cur.refresh
	}
	if next.id == "" {
		next.id = b.cur.id
	}
	// The new tokens are kept even if the answer is refused below: the
	// endpoint may have rotated the old refresh token already, and the
	// write-back then keeps the user's login alive.
	b.cur = next
	b.refreshed = true
	b.meta = meta
	for _, s := range []string{next.access, next.refresh, next.id} {
		if s != "" {
			b.addSecret(s)
		}
	}
	// See WriteOnRefresh. A failure here is not the agent's business:
	// WriteBack at exit tries again and says why.
	if b.writeOnRefresh {
		_, _ = b.writeBackLocked()
	}

	out, ok := deepCopy(resp).(map[string]any)
	if !ok {
		return nil, refuse("response is not a JSON object")
	}
	if err := b.replaceSecrets(out); err != nil {
		return nil, err
	}
	if treeLeaks(out, b.secrets) {
		return nil, refuse("response carries a real token outside the token fields")
	}
	return b.encode(out)
}

// parseTokens checks a success response's shape and returns its tokens.
func parseTokens(resp map[string]any) (login, refreshMeta, error) {
	var l login
	meta := refreshMeta{at: now()}
	str := func(k string, required bool) (string, error) {
		v, present := resp[k]
		if !present || v == nil {
			if required {
				return "", refuse("response without %s", k)
			}
			return "", nil
		}
		s, ok := v.(string)
		if !ok || s == "" {
			return "", refuse("response %s is not a non-empty string", k)
		}
		return s, nil
	}
	var err error
	if l.access, err = str("access_token", true); err != nil {
		return l, meta, err
	}
	if l.refresh, err = str("refresh_token", false); err != nil {
		return l, meta, err
	}
	if l.id, err = str("id_token", false); err != nil {
		return l, meta, err
	}
	if v, ok := resp["expires_in"]; ok && v != nil {
		n, ok := v.(json.Number)
		if !ok {
			return l, meta, refuse("response expires_in is not a number")
		}
		if meta.expiresIn, err = n.Int64(); err != nil || meta.expiresIn < 0 {
			return l, meta, refuse("response expires_in %q is not a count of seconds", n)
		}
	}
	if v, ok := resp["scope"]; ok && v != nil {
		if meta.scope, ok = v.(string); !ok {
			return l, meta, refuse("response scope is not a string")
		}
		meta.hasScope = true
	}
	return l, meta, nil
}

// noDuplicateKeys refuses a JSON document with a key given twice in one
// object, exactly or up to case: the endpoint might read the other copy
// than agentvault did. Case counts because decoders that match names
// case-insensitively (Go's encoding/json into a struct, with Unicode
// folding: "refreſh_token" is refresh_token) take the last match, and the
// rewritten body's keys are sorted, so a folded twin can come last.
func noDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	return walkDup(dec)
}

func walkDup(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := k.(string)
			if seen[foldKey(key)] {
				return fmt.Errorf("key %q given twice (up to case)", key)
			}
			seen[foldKey(key)] = true
			if err := walkDup(dec); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := walkDup(dec); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// IsRefused reports whether err is a refusal.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// foldKey is s with every rune replaced by the smallest rune of its simple
// case-folding orbit, so that foldKey(x) == foldKey(y) exactly when
// strings.EqualFold(x, y).
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		low := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			low = min(low, f)
		}
		b.WriteRune(low)
	}
	return b.String()
}
