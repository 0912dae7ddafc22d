package broker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testPlaceholder stands in for the session's placeholder maker: a JWT
// keeps its header and claims with a new signature; a token with a known
// prefix keeps it; the rest is drawn at the same length from base64url.
func testPlaceholder(real string) string {
	if parts := strings.Split(real, "."); len(parts) == 3 {
		return parts[0] + "." + parts[1] + "." + randomB64(len(parts[2]))
	}
	for _, p := range []string{"sk-ant-oat01-", "sk-ant-ort01-", "sk-proj-", "rt_"} {
		if strings.HasPrefix(real, p) {
			return p + randomB64(len(real)-len(p))
		}
	}
	return randomB64(len(real))
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func randomB64(n int) string {
	buf := make([]byte, n)
	rand.Read(buf)
	for i := range buf {
		buf[i] = b64url[int(buf[i])%len(b64url)]
	}
	return string(buf)
}

func claudeAccess() string  { return "sk-ant-oat01-" + randomB64(95) + "AA" }
func claudeRefresh() string { return "sk-ant-ort01-" + randomB64(95) + "AA" }

// jwt makes an unsigned-looking RS256 JWT with claims.
func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"k1"}`))
	return head + "." + base64.RawURLEncoding.EncodeToString(c) + "." + randomB64(342)
}

func codexAccess(t *testing.T) string {
	return jwt(t, map[string]any{"aud": []string{"https://api.openai.com/v1"}, "exp": 1767225600,
		"https://api.openai.com/auth": map[string]any{"chatgpt_account_id": "acc-1", "chatgpt_plan_type": "pro"}})
}

func codexID(t *testing.T, extra map[string]any) string {
	claims := map[string]any{"email": "user@example.test", "exp": 1767225600,
		"https://api.openai.com/auth": map[string]any{"chatgpt_account_id": "acc-1", "chatgpt_plan_type": "pro"}}
	for k, v := range extra {
		claims[k] = v
	}
	return jwt(t, claims)
}

func codexRefresh() string { return "rt_" + randomB64(60) }

// writeFile writes a store with mode perm and returns its path.
func writeFile(t *testing.T, dir, name string, v any, perm os.FileMode) string {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

// claudeStore is a Claude Code store as 2.1 writes it, with an MCP
// server's OAuth tokens beside the login.
func claudeStore(access, refresh string) map[string]any {
	return map[string]any{
		"claudeAiOauth": map[string]any{
			"accessToken": access, "refreshToken": refresh,
			"expiresAt":        json.Number("1767225600123"),
			"scopes":           []any{"user:inference", "user:profile", "user:sessions:claude_code"},
			"subscriptionType": "max", "rateLimitTier": "default_claude_max_20x",
			"clientId": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
		},
		"mcpOAuth": map[string]any{
			"server|abc": map[string]any{"serverName": "docs", "accessToken": "mcp-access-" + randomB64(40),
				"refreshToken": "mcp-refresh-" + randomB64(40), "clientSecret": "mcp-secret-" + randomB64(30)},
		},
	}
}

func codexStore(t *testing.T, access, refresh, id string) map[string]any {
	return map[string]any{
		"OPENAI_API_KEY": nil,
		"auth_mode":      "chatgpt",
		"tokens": map[string]any{
			"id_token": id, "access_token": access, "refresh_token": refresh, "account_id": "acc-1",
		},
		"last_refresh": "2026-11-30T10:00:00.123456Z",
	}
}

// noReal fails if any of reals shows in data, as is or decoded.
func noReal(t *testing.T, what string, data []byte, reals ...string) {
	t.Helper()
	if leaks(string(data), reals) {
		t.Fatalf("%s carries a real token:\n%s", what, data)
	}
	for _, r := range reals {
		if strings.Contains(string(data), r) {
			t.Fatalf("%s carries real %q", what, r)
		}
	}
}

func decode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	m, err := decodeObject(data)
	if err != nil {
		t.Fatalf("%v:\n%s", err, data)
	}
	return m
}
