package broker

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// refresh runs one refresh through b with the given answer.
func refresh(t *testing.T, b *Broker, answer map[string]any) {
	t.Helper()
	cp := decode(t, b.Copy())
	ph := getPath(cp, b.format.refresh).(string)
	_, r, err := b.RewriteRequest("application/json", []byte(`{"grant_type":"refresh_token","refresh_token":"`+ph+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(answer)
	if _, err := r.Response(200, body); err != nil {
		t.Fatal(err)
	}
}

func TestWriteBack(t *testing.T) {
	at := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	now = func() time.Time { return at }
	t.Cleanup(func() { now = time.Now })

	xa, xr, xid := codexAccess(t), codexRefresh(), codexID(t, nil)
	na, nr, nid := codexAccess(t), codexRefresh(), codexID(t, map[string]any{"iat": 2})
	ca, cr, nca, ncr := claudeAccess(), claudeRefresh(), claudeAccess(), claudeRefresh()
	cases := []struct {
		name   string
		format *Format
		store  map[string]any
		perm   os.FileMode
		answer map[string]any
		want   map[string]string // path -> value after write-back
	}{
		{"claude", Claude, claudeStore(ca, cr), 0o600,
			map[string]any{"access_token": nca, "refresh_token": ncr, "expires_in": 3600, "scope": "user:inference user:profile"},
			map[string]string{"claudeAiOauth.accessToken": nca, "claudeAiOauth.refreshToken": ncr,
				"claudeAiOauth.expiresAt": "1796396400000", "claudeAiOauth.subscriptionType": "max"}},
		{"claude, refresh token not rotated", Claude, claudeStore(ca, cr), 0o640,
			map[string]any{"access_token": nca, "expires_in": 3600},
			map[string]string{"claudeAiOauth.accessToken": nca, "claudeAiOauth.refreshToken": cr}},
		{"codex", Codex, codexStore(t, xa, xr, xid), 0o600,
			map[string]any{"id_token": nid, "access_token": na, "refresh_token": nr},
			map[string]string{"tokens.access_token": na, "tokens.refresh_token": nr, "tokens.id_token": nid,
				"tokens.account_id": "acc-1", "last_refresh": "2026-12-04T14:00:00Z", "auth_mode": "chatgpt"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, tc.format.StoreFile, tc.store, tc.perm)
			b, err := Open(tc.format, path, testPlaceholder)
			if err != nil {
				t.Fatal(err)
			}
			refresh(t, b, tc.answer)
			// The CLI, outside the session, adds a field meanwhile.
			cur := decode(t, mustRead(t, path))
			cur["addedMeanwhile"] = map[string]any{"kept": true}
			data, _ := json.MarshalIndent(cur, "", "  ")
			if err := os.WriteFile(path, data, 0); err != nil {
				t.Fatal(err)
			}

			wrote, err := b.WriteBack()
			if err != nil || !wrote {
				t.Fatalf("WriteBack = %v, %v", wrote, err)
			}
			got := decode(t, mustRead(t, path))
			for p, want := range tc.want {
				if v := toString(getPath(got, strings.Split(p, "."))); v != want {
					t.Errorf("%s = %q, want %q", p, v, want)
				}
			}
			if getPath(got, []string{"addedMeanwhile", "kept"}) != true {
				t.Error("a field added meanwhile was lost")
			}
			st, _ := os.Stat(path)
			if st.Mode().Perm() != tc.perm {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), tc.perm)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("left behind: %v", entries)
			}
			// The placeholders never reach the user's store.
			for _, ph := range []string{getPath(decode(t, b.Copy()), tc.format.access).(string)} {
				if strings.Contains(string(mustRead(t, path)), ph) {
					t.Error("a placeholder was written to the user's store")
				}
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	d, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestWriteBackRefuses(t *testing.T) {
	cases := []struct {
		name string
		// meddle changes the store after the refresh; it returns a file
		// that must stay untouched, if any
		meddle func(t *testing.T, path string) (untouched string)
		want   string
		is     error
	}{
		{"a symlink planted at the store", func(t *testing.T, path string) string {
			victim := filepath.Join(filepath.Dir(path), "victim")
			os.WriteFile(victim, []byte("precious"), 0o600)
			os.Remove(path)
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
			return victim
		}, "symlink", nil},
		{"a directory in its place", func(t *testing.T, path string) string {
			os.Remove(path)
			os.Mkdir(path, 0o700)
			return ""
		}, "not a regular file", nil},
		{"refreshed outside the session", func(t *testing.T, path string) string {
			writeFile(t, filepath.Dir(path), filepath.Base(path), claudeStore(claudeAccess(), claudeRefresh()), 0o600)
			return path
		}, "", ErrConflict},
		{"logged out outside the session", func(t *testing.T, path string) string {
			os.Remove(path)
			return ""
		}, "no such file", nil},
		{"made unreadable JSON", func(t *testing.T, path string) string {
			os.WriteFile(path, []byte("{"), 0o600)
			return path
		}, "not JSON", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), ".credentials.json", claudeStore(claudeAccess(), claudeRefresh()), 0o600)
			b, err := Open(Claude, path, testPlaceholder)
			if err != nil {
				t.Fatal(err)
			}
			refresh(t, b, map[string]any{"access_token": claudeAccess(), "refresh_token": claudeRefresh()})
			untouched := tc.meddle(t, path)
			var before []byte
			if untouched != "" {
				before = mustRead(t, untouched)
			}
			wrote, err := b.WriteBack()
			if err == nil || wrote {
				t.Fatalf("WriteBack = %v, %v", wrote, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to mention %q", err, tc.want)
			}
			if untouched != "" && string(mustRead(t, untouched)) != string(before) {
				t.Fatal("a file that must stay untouched changed")
			}
		})
	}
}

func TestWriteBackWithoutRefresh(t *testing.T) {
	store := claudeStore(claudeAccess(), claudeRefresh())
	path := writeFile(t, t.TempDir(), ".credentials.json", store, 0o600)
	before := mustRead(t, path)
	b, err := Open(Claude, path, testPlaceholder)
	if err != nil {
		t.Fatal(err)
	}
	// A refused answer without tokens changes nothing.
	cp := decode(t, b.Copy())
	_, r, err := b.RewriteRequest("application/json", []byte(`{"grant_type":"refresh_token","refresh_token":"`+getPath(cp, Claude.refresh).(string)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Response(200, []byte(`{"token_type":"Bearer"}`)); err == nil {
		t.Fatal("an answer without tokens was accepted")
	}
	if wrote, err := b.WriteBack(); wrote || err != nil {
		t.Fatalf("WriteBack = %v, %v", wrote, err)
	}
	if string(mustRead(t, path)) != string(before) {
		t.Fatal("the store changed")
	}
}

// TestWriteBackAtRefresh: the refreshed tokens are in the user's store as
// soon as the answer is rewritten, so an agentvault killed before its exit
// write-back leaves a store that still logs in (the endpoint may have
// rotated the refresh token the store held).
func TestWriteBackAtRefresh(t *testing.T) {
	path := writeFile(t, t.TempDir(), ".credentials.json", claudeStore(claudeAccess(), claudeRefresh()), 0o600)
	b, err := Open(Claude, path, testPlaceholder)
	if err != nil {
		t.Fatal(err)
	}
	b.WriteOnRefresh()
	na, nr := claudeAccess(), claudeRefresh()
	refresh(t, b, map[string]any{"access_token": na, "refresh_token": nr, "expires_in": 3600})
	got := decode(t, mustRead(t, path))
	if getPath(got, Claude.access) != na || getPath(got, Claude.refresh) != nr {
		t.Fatal("the store does not hold the refreshed tokens before the exit write-back")
	}
	// The exit write-back finds the store as the session left it (no
	// conflict with its own write) and keeps the tokens.
	if wrote, err := b.WriteBack(); !wrote || err != nil {
		t.Fatalf("WriteBack = %v, %v", wrote, err)
	}
	got = decode(t, mustRead(t, path))
	if getPath(got, Claude.access) != na || getPath(got, Claude.refresh) != nr {
		t.Fatal("the exit write-back lost the refreshed tokens")
	}
}
