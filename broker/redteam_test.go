package broker

import (
	"encoding/json"
	"testing"
)

// TestRedteamForeignAccountAnswer: a refresh answer whose tokens belong to
// another account than the store's login is refused and its tokens are
// not kept, so the write-back cannot log the user into the agent's
// account. The agent gets there by making the endpoint refresh its own
// login while the broker rewrote the user's (a query-string parameter the
// broker never reads, at an endpoint that lets the query win).
func TestRedteamForeignAccountAnswer(t *testing.T) {
	claudeAnswer := func(account string) map[string]any {
		return map[string]any{"access_token": claudeAccess(), "refresh_token": claudeRefresh(), "expires_in": 3600,
			"account": map[string]any{"uuid": account}}
	}
	codexAnswer := func(t *testing.T, account string) map[string]any {
		auth := map[string]any{"https://api.openai.com/auth": map[string]any{"chatgpt_account_id": account}}
		return map[string]any{"access_token": jwt(t, auth), "refresh_token": codexRefresh(), "id_token": jwt(t, auth)}
	}
	cases := []struct {
		name    string
		format  *Format
		store   func(t *testing.T) map[string]any
		answer  func(t *testing.T) map[string]any
		refused bool
	}{
		{name: "claude, the login's account", format: Claude, store: claudeWithAccount,
			answer: func(*testing.T) map[string]any { return claudeAnswer("u-1") }},
		{name: "claude, another account", format: Claude, store: claudeWithAccount, refused: true,
			answer: func(*testing.T) map[string]any { return claudeAnswer("attacker") }},
		{name: "claude, the store does not say", format: Claude,
			store:  func(*testing.T) map[string]any { return claudeStore(claudeAccess(), claudeRefresh()) },
			answer: func(*testing.T) map[string]any { return claudeAnswer("attacker") }},
		{name: "codex, the login's account", format: Codex, store: codexWithAccount,
			answer: func(t *testing.T) map[string]any { return codexAnswer(t, "acc-1") }},
		{name: "codex, another account in the claims", format: Codex, store: codexWithAccount, refused: true,
			answer: func(t *testing.T) map[string]any { return codexAnswer(t, "acc-attacker") }},
		{name: "codex, another account in the access token only", format: Codex, store: codexWithAccount, refused: true,
			answer: func(t *testing.T) map[string]any {
				a := codexAnswer(t, "acc-1")
				a["access_token"] = codexAnswer(t, "acc-attacker")["access_token"]
				return a
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := tc.store(t)
			path := writeFile(t, t.TempDir(), "store.json", store, 0o600)
			b, err := Open(tc.format, path, testPlaceholder)
			if err != nil {
				t.Fatal(err)
			}
			ph := getPath(decode(t, b.Copy()), tc.format.refresh).(string)
			req, _ := json.Marshal(map[string]any{"grant_type": "refresh_token", "refresh_token": ph})
			_, r, err := b.RewriteRequest("application/json", req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := json.Marshal(tc.answer(t))
			_, err = r.Response(200, answer)
			if got := err != nil && IsRefused(err); got != tc.refused {
				t.Fatalf("refused = %v (%v), want %v", got, err, tc.refused)
			}
			wrote, err := b.WriteBack()
			if err != nil || wrote == tc.refused {
				t.Fatalf("WriteBack() = %v, %v; a refused answer must leave the store alone", wrote, err)
			}
			if tc.refused {
				if pairs := b.Access(); len(pairs) != 1 || pairs[0].Real != getPath(store, tc.format.access) {
					t.Fatal("the proxy would swap the foreign account's access token")
				}
			}
		})
	}
}

// TestRedteamOldAccessNotSwapped: once a refresh replaced the access
// token, the old placeholder is no longer swapped for the old real token,
// which the proxy's reflection guard no longer knows.
func TestRedteamOldAccessNotSwapped(t *testing.T) {
	b, _, _, phAccess, phRefresh := openClaude(t)
	req, _ := json.Marshal(map[string]any{"grant_type": "refresh_token", "refresh_token": phRefresh})
	_, r, err := b.RewriteRequest("application/json", req)
	if err != nil {
		t.Fatal(err)
	}
	newAccess := claudeAccess()
	answer, _ := json.Marshal(map[string]any{"access_token": newAccess, "refresh_token": claudeRefresh()})
	if _, err := r.Response(200, answer); err != nil {
		t.Fatal(err)
	}
	pairs := b.Access()
	if len(pairs) != 1 || pairs[0].Real != newAccess || pairs[0].Placeholder == phAccess {
		t.Fatalf("Access() after a refresh = %d pairs; want only the new token's", len(pairs))
	}
}

func claudeWithAccount(*testing.T) map[string]any {
	s := claudeStore(claudeAccess(), claudeRefresh())
	s["claudeAiOauth"].(map[string]any)["accountUuid"] = "u-1"
	return s
}

func codexWithAccount(t *testing.T) map[string]any {
	return codexStore(t, codexAccess(t), codexRefresh(), codexID(t, nil))
}

// TestRedteamFoldedKeySmuggling: a refresh request that names the refresh
// token twice under keys that differ only in case folding. The broker
// reads the exact key; an endpoint that decodes into a struct (Go's
// encoding/json matches names case-insensitively, Unicode folding
// included, and the last match wins) reads the other, which sorts after
// the rewritten one: "refreſh_token" (U+017F) or "refresh_toKen" (U+212A).
// Such a request must be refused: the endpoint would refresh the agent's
// own login.
func TestRedteamFoldedKeySmuggling(t *testing.T) {
	b, _, _, _, phRefresh := openClaude(t)
	attacker := claudeRefresh()
	for _, key := range []string{"refre\u017fh_token", "refresh_to\u212aen", "REFRESH_TOKEN", "Grant_Type"} {
		t.Run(key, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"grant_type": "refresh_token", "refresh_token": phRefresh, key: attacker})
			out, _, err := b.RewriteRequest("application/json", body)
			if err == nil {
				var endpoint struct {
					RefreshToken string `json:"refresh_token"`
				}
				json.Unmarshal(out, &endpoint)
				t.Fatalf("not refused; an endpoint decoding into a struct reads refresh_token = attacker's: %v", endpoint.RefreshToken == attacker)
			}
			form := "grant_type=refresh_token&refresh_token=" + phRefresh + "&" + key + "=" + attacker
			if _, _, err := b.RewriteRequest("application/x-www-form-urlencoded", []byte(form)); err == nil {
				t.Fatal("form not refused")
			}
		})
	}
}

// TestRedteamRotatedRefreshReplayed: after a refresh rotated the refresh
// token, the agent sends the old placeholder again. The old real token must
// not be sent: an endpoint that detects reuse revokes the whole login.
func TestRedteamRotatedRefreshReplayed(t *testing.T) {
	b, _, _, _, phRefresh := openClaude(t)
	refresh := func(ph string) (*Refresh, error) {
		req, _ := json.Marshal(map[string]any{"grant_type": "refresh_token", "refresh_token": ph})
		_, r, err := b.RewriteRequest("application/json", req)
		return r, err
	}
	r, err := refresh(phRefresh)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := json.Marshal(map[string]any{"access_token": claudeAccess(), "refresh_token": claudeRefresh()})
	out, err := r.Response(200, answer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := refresh(phRefresh); err == nil || !IsRefused(err) {
		t.Fatalf("the rotated refresh placeholder was let through: %v", err)
	}
	next, _ := decode(t, out)["refresh_token"].(string)
	if _, err := refresh(next); err != nil {
		t.Fatalf("the current refresh placeholder: %v", err)
	}
}
