package broker

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// openClaude opens a Claude store and returns the broker with the
// placeholders of its tokens.
func openClaude(t *testing.T) (b *Broker, access, refresh, phAccess, phRefresh string) {
	t.Helper()
	access, refresh = claudeAccess(), claudeRefresh()
	path := writeFile(t, t.TempDir(), ".credentials.json", claudeStore(access, refresh), 0o600)
	b, err := Open(Claude, path, testPlaceholder)
	if err != nil {
		t.Fatal(err)
	}
	cp := decode(t, b.Copy())
	phAccess = getPath(cp, Claude.access).(string)
	phRefresh = getPath(cp, Claude.refresh).(string)
	return b, access, refresh, phAccess, phRefresh
}

func TestRewriteRequest(t *testing.T) {
	b, access, refresh, phAccess, phRefresh := openClaude(t)
	jsonBody := func(m map[string]any) []byte { d, _ := json.Marshal(m); return d }
	cases := []struct {
		name, ctype string
		body        []byte
		want        string // the refresh_token sent on; "" for a refusal
	}{
		{"claude's JSON", "application/json", jsonBody(map[string]any{"grant_type": "refresh_token", "refresh_token": phRefresh,
			"client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e", "scope": "user:inference user:profile"}), refresh},
		{"JSON with charset", "application/json; charset=utf-8", jsonBody(map[string]any{"grant_type": "refresh_token", "refresh_token": phRefresh}), refresh},
		{"form", "application/x-www-form-urlencoded", []byte("grant_type=refresh_token&refresh_token=" + url.QueryEscape(phRefresh) + "&client_id=app_x"), refresh},
		{"a refresh token agentvault did not hand out", "application/json", jsonBody(map[string]any{"grant_type": "refresh_token", "refresh_token": claudeRefresh()}), ""},
		{"the real refresh token itself", "application/json", jsonBody(map[string]any{"grant_type": "refresh_token", "refresh_token": refresh}), ""},
		{"the access placeholder as refresh token", "application/json", jsonBody(map[string]any{"grant_type": "refresh_token", "refresh_token": phAccess}), ""},
		{"no refresh token", "application/json", jsonBody(map[string]any{"grant_type": "refresh_token"}), ""},
		{"a login inside the session", "application/json", jsonBody(map[string]any{"grant_type": "authorization_code", "code": "abc", "refresh_token": phRefresh}), ""},
		{"JSON key given twice", "application/json", []byte(`{"grant_type":"refresh_token","refresh_token":"` + phRefresh + `","refresh_token":"other"}`), ""},
		{"form key given twice", "application/x-www-form-urlencoded", []byte("grant_type=refresh_token&refresh_token=" + phRefresh + "&refresh_token=x"), ""},
		{"plain text", "text/plain", []byte("refresh_token=" + phRefresh), ""},
		{"not JSON", "application/json", []byte("grant_type=refresh_token"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, r, err := b.RewriteRequest(tc.ctype, tc.body)
			if tc.want == "" {
				if err == nil || !IsRefused(err) || r != nil {
					t.Fatalf("not refused: %v %s", err, out)
				}
				if strings.Contains(err.Error(), refresh) || strings.Contains(err.Error(), access) {
					t.Fatal("the refusal names a real token")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if strings.Contains(tc.ctype, "json") {
				got, _ = decode(t, out)["refresh_token"].(string)
			} else {
				q, _ := url.ParseQuery(string(out))
				got = q.Get("refresh_token")
				if q.Get("client_id") != "app_x" {
					t.Errorf("form lost a field: %s", out)
				}
			}
			if got != tc.want {
				t.Fatalf("refresh_token sent on = %q, want the real one", got)
			}
			if strings.Contains(string(out), phRefresh) {
				t.Fatal("the placeholder was sent on")
			}
		})
	}
}

func TestResponse(t *testing.T) {
	newAccess, newRefresh := claudeAccess(), claudeRefresh()
	ok := func(extra map[string]any) []byte {
		m := map[string]any{"token_type": "Bearer", "access_token": newAccess, "refresh_token": newRefresh, "expires_in": 28800,
			"scope": "user:inference user:profile", "account": map[string]any{"uuid": "u-1", "email_address": "user@example.test"}}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		d, _ := json.Marshal(m)
		return d
	}
	cases := []struct {
		name   string
		status int
		body   []byte
		// refused: the agent gets nothing; kept: the new tokens were kept
		// for the write-back all the same
		refused, kept bool
	}{
		{"a refresh", 200, ok(nil), false, true},
		{"no refresh token in the answer (unchanged)", 200, ok(map[string]any{"refresh_token": nil}), false, true},
		{"no access token", 200, ok(map[string]any{"access_token": nil}), true, false},
		{"access token not a string", 200, ok(map[string]any{"access_token": 12345}), true, false},
		{"empty refresh token", 200, ok(map[string]any{"refresh_token": ""}), true, false},
		{"expires_in a string", 200, ok(map[string]any{"expires_in": "soon"}), true, false},
		{"not JSON", 200, []byte("<html>gateway</html>"), true, false},
		{"a JSON array", 200, []byte(`[{"access_token":"x"}]`), true, false},
		{"trailing data", 200, append(ok(nil), []byte(`{"access_token":"y"}`)...), true, false},
		{"the new refresh token echoed in another field", 200, ok(map[string]any{"debug": map[string]any{"issued": newRefresh}}), true, true},
		{"the old refresh token echoed", 200, ok(map[string]any{"previous": "__OLD_REFRESH__"}), true, true},
		{"the new access token echoed in base64", 200,
			ok(map[string]any{"trace": base64.StdEncoding.EncodeToString([]byte("token=" + newAccess))}), true, true},
		{"an id_token whose claims carry the refresh token", 200,
			ok(map[string]any{"id_token": jwt(t, map[string]any{"sub": "u-1", "rt": newRefresh})}), true, true},
		{"an OAuth error", 400, []byte(`{"error":"invalid_grant","error_description":"refresh token revoked"}`), false, false},
		{"an OAuth error naming the real refresh token", 400, []byte(`{"error":"invalid_grant","error_description":"__OLD_REFRESH__ is revoked"}`), true, false},
		{"an error without error", 401, []byte(`{"message":"no"}`), true, false},
		{"an HTML error page", 502, []byte("<html>bad gateway</html>"), true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, access, refresh, _, phRefresh := openClaude(t)
			body := []byte(strings.ReplaceAll(string(tc.body), "__OLD_REFRESH__", refresh))
			_, r, err := b.RewriteRequest("application/json", []byte(`{"grant_type":"refresh_token","refresh_token":"`+phRefresh+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.Response(tc.status, body)
			if tc.refused {
				if err == nil || !IsRefused(err) || out != nil {
					t.Fatalf("not refused: %v\n%s", err, out)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				noReal(t, "the answer", out, access, refresh, newAccess, newRefresh)
			}
			if b.Refreshed() != tc.kept {
				t.Fatalf("Refreshed() = %v, want %v", b.Refreshed(), tc.kept)
			}
			if !tc.kept {
				return
			}
			// Only the current token is swapped: an old one echoed back
			// would pass the proxy's reflection guard.
			pairs := b.Access()
			if tc.refused {
				return
			}
			if len(pairs) != 1 || pairs[0].Real != newAccess {
				t.Fatalf("Access() = %v", pairs)
			}
			got := decode(t, out)
			if got["access_token"] != pairs[0].Placeholder {
				t.Errorf("answer's access_token %v, want the new placeholder", got["access_token"])
			}
			if got["expires_in"].(json.Number).String() != "28800" || getPath(got, []string{"account", "uuid"}) != "u-1" {
				t.Errorf("answer lost fields: %s", out)
			}
			// The agent's next refresh, with whatever refresh token it now
			// holds, sends the current real one.
			next, _ := got["refresh_token"].(string)
			if next == "" {
				next = phRefresh
			}
			wantReal := newRefresh
			if _, had := decode(t, tc.body)["refresh_token"]; !had {
				wantReal = refresh
			}
			sent, _, err := b.RewriteRequest("application/json", []byte(`{"grant_type":"refresh_token","refresh_token":"`+next+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			if decode(t, sent)["refresh_token"] != wantReal {
				t.Fatalf("the next refresh sends %s", sent)
			}
		})
	}
}

func TestResponseCodexIDToken(t *testing.T) {
	xa, xr, xid := codexAccess(t), codexRefresh(), codexID(t, nil)
	path := writeFile(t, t.TempDir(), "auth.json", codexStore(t, xa, xr, xid), 0o600)
	b, err := Open(Codex, path, testPlaceholder)
	if err != nil {
		t.Fatal(err)
	}
	cp := decode(t, b.Copy())
	ph := getPath(cp, Codex.refresh).(string)
	_, r, err := b.RewriteRequest("application/json", []byte(`{"client_id":"app_EMoamEEZ73f0CkXaXp7hrann","grant_type":"refresh_token","refresh_token":"`+ph+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	na, nr, nid := codexAccess(t), codexRefresh(), codexID(t, map[string]any{"iat": 2})
	body, _ := json.Marshal(map[string]any{"id_token": nid, "access_token": na, "refresh_token": nr})
	out, err := r.Response(200, body)
	if err != nil {
		t.Fatal(err)
	}
	noReal(t, "the answer", out, xa, xr, xid, na, nr, nid)
	got := decode(t, out)
	// codex reads the plan and account from the id_token's claims: the
	// placeholder keeps them.
	if strings.Split(got["id_token"].(string), ".")[1] != strings.Split(nid, ".")[1] {
		t.Error("the id_token placeholder lost the claims")
	}
	if real, ok := b.Real(got["id_token"].(string)); !ok || real != nid {
		t.Error("the id_token placeholder does not map to the new id_token")
	}
}
