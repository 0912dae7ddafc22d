// Package broker keeps an agent CLI's subscription login (OAuth access and
// refresh tokens) out of the agent: it reads the CLI's real token store,
// hands out a copy with placeholders, rewrites the token endpoint's refresh
// requests and responses, and writes refreshed real tokens back to the
// user's store. It knows nothing of sessions or proxies; the caller wires
// it (docs/subscription-logins.md).
package broker

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// Format is one CLI's token store and token endpoint, as read from the
// CLI's published bundle (docs/subscription-logins.md says where).
type Format struct {
	// Name is the agent's name in configuration ("claude", "codex").
	Name string
	// DirEnv names the variable that moves the CLI's configuration
	// directory; HomeDir is that directory relative to $HOME by default,
	// and StoreFile the token store inside it.
	DirEnv, HomeDir, StoreFile string
	// TokenURL is the endpoint the CLI refreshes its tokens at; APIHosts
	// are where it sends the access token.
	TokenURL string
	APIHosts []string
	// HomeFiles are files in $HOME the CLI reads instead of files of the
	// same name in its directory while DirEnv is unset (Claude Code's
	// global .claude.json), so a session copy of the directory links them.
	HomeFiles []string
	// HomeSecretKeys are top-level keys of those files that can hold a
	// real credential (Claude Code keeps an API key made by a Console
	// /login in .claude.json's primaryApiKey): the session links the files
	// as they are, so a value there is the agent's to read.
	HomeSecretKeys []string

	// secretKeys: a string under one of these keys, at any depth of the
	// store, is a credential and is replaced by a placeholder. This covers
	// more than the login (an MCP server's OAuth tokens in Claude Code's
	// store, an API key in codex's), so that nothing real is copied.
	secretKeys []string
	// dropKeys are top-level keys left out of the copy: values whose
	// placeholder would still carry a secret (a JWT keeps its claims).
	dropKeys []string
	// access, refresh and id are where the login's tokens sit in the store
	// (id is optional); the token endpoint refreshes these.
	access, refresh, id []string
	// stamp records a refresh's metadata in the store at write-back.
	stamp func(store map[string]any, r refreshMeta)
	// storeAccount and answerAccounts name the account a store's login
	// and a refresh answer's tokens belong to ("" where they do not say).
	// A refresh answer for another account than the store's is refused:
	// the request that reached the endpoint was not the refresh the broker
	// rewrote (a parameter it never saw, such as the query string, won),
	// and its tokens written back would log the user into that account.
	storeAccount   func(store map[string]any) string
	answerAccounts func(resp map[string]any) []string
}

// refreshMeta is what a refresh response said besides the tokens.
type refreshMeta struct {
	at        time.Time
	expiresIn int64 // seconds; 0 when the response did not say
	scope     string
	hasScope  bool
}

// Claude is Claude Code's plaintext store (Linux, and macOS without the
// keychain): $CLAUDE_CONFIG_DIR/.credentials.json, default
// ~/.claude/.credentials.json, mode 0600, a JSON object whose claudeAiOauth
// holds accessToken (sk-ant-oat01-…), refreshToken (sk-ant-ort01-…),
// expiresAt (milliseconds since the epoch), scopes, subscriptionType,
// rateLimitTier and more. It refreshes with a JSON POST to TokenURL:
// {"grant_type":"refresh_token","refresh_token":…,"client_id":…,"scope":…}
// and reads access_token, refresh_token (absent: unchanged), expires_in and
// scope from the answer.
var Claude = &Format{
	Name:      "claude",
	DirEnv:    "CLAUDE_CONFIG_DIR",
	HomeDir:   ".claude",
	StoreFile: ".credentials.json",
	TokenURL:  "https://platform.claude.com/v1/oauth/token",
	APIHosts:  []string{"api.anthropic.com"},
	HomeFiles: []string{".claude.json"},
	// Read in Claude Code 2.1.332 as the "/login managed key".
	HomeSecretKeys: []string{"primaryApiKey"},
	secretKeys:     []string{"accessToken", "refreshToken", "clientSecret", "access_token", "refresh_token", "id_token"},
	access:         []string{"claudeAiOauth", "accessToken"},
	refresh:        []string{"claudeAiOauth", "refreshToken"},
	// The store keeps accountUuid; the answer has account.uuid.
	storeAccount: func(store map[string]any) string {
		s, _ := getPath(store, []string{"claudeAiOauth", "accountUuid"}).(string)
		return s
	},
	answerAccounts: func(resp map[string]any) []string {
		s, _ := getPath(resp, []string{"account", "uuid"}).(string)
		return []string{s}
	},
	stamp: func(store map[string]any, r refreshMeta) {
		o, _ := store["claudeAiOauth"].(map[string]any)
		if o == nil {
			return
		}
		if r.expiresIn > 0 {
			o["expiresAt"] = r.at.UnixMilli() + r.expiresIn*1000
		}
		if r.hasScope {
			o["scopes"] = strings.Fields(r.scope)
		}
	},
}

// Codex is codex's file store: $CODEX_HOME/auth.json, default
// ~/.codex/auth.json, a JSON object with OPENAI_API_KEY (null under a
// ChatGPT login), tokens {id_token, access_token, refresh_token,
// account_id} (both JWTs but the refresh token) and last_refresh
// (RFC 3339). It refreshes with a JSON POST to TokenURL:
// {"client_id":…,"grant_type":"refresh_token","refresh_token":…} and reads
// id_token, access_token and refresh_token, each optional, from the answer.
var Codex = &Format{
	Name:       "codex",
	DirEnv:     "CODEX_HOME",
	HomeDir:    ".codex",
	StoreFile:  "auth.json",
	TokenURL:   "https://auth.openai.com/oauth/token",
	APIHosts:   []string{"chatgpt.com"},
	secretKeys: []string{"access_token", "refresh_token", "id_token", "OPENAI_API_KEY", "personal_access_token"},
	// An agent identity is a JWT whose claims hold a private key.
	dropKeys: []string{"agent_identity"},
	access:   []string{"tokens", "access_token"},
	refresh:  []string{"tokens", "refresh_token"},
	id:       []string{"tokens", "id_token"},
	// The store keeps tokens.account_id; the answer's JWTs carry it in
	// their claims.
	storeAccount: func(store map[string]any) string {
		s, _ := getPath(store, []string{"tokens", "account_id"}).(string)
		return s
	},
	answerAccounts: func(resp map[string]any) []string {
		var out []string
		for _, k := range []string{"id_token", "access_token"} {
			if s, ok := resp[k].(string); ok {
				out = append(out, jwtClaim(s, "https://api.openai.com/auth", "chatgpt_account_id"))
			}
		}
		return out
	},
	stamp: func(store map[string]any, r refreshMeta) {
		store["last_refresh"] = r.at.UTC().Format(time.RFC3339Nano)
	},
}

// jwtClaim returns the string at path in a JWT's claims, "" if tok is not
// a JWT or has no such claim. The signature is not checked: the broker
// only compares what the endpoint says with what the store says.
func jwtClaim(tok string, path ...string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims map[string]any
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	s, _ := getPath(claims, path).(string)
	return s
}

// Formats lists the supported CLIs.
var Formats = []*Format{Claude, Codex}

// Lookup returns the format named name.
func Lookup(name string) (*Format, bool) {
	for _, f := range Formats {
		if f.Name == name {
			return f, true
		}
	}
	return nil, false
}
