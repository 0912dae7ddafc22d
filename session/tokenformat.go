package session

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/agentvault/agentvault/config"
)

// tokenPrefix is a vendor's fixed token prefix. Only these are copied into a
// placeholder: a prefix agentvault does not know could be part of the secret.
type tokenPrefix struct {
	prefix string
	// keep lists the separators that sit at fixed places in the part after
	// the prefix (Slack's ids, the halves of a fine-grained GitHub token);
	// elsewhere '-' and '_' are ordinary characters of the token's alphabet.
	keep string
}

// knownPrefixes are matched longest first (sk-ant-api03- before sk-).
var knownPrefixes = []tokenPrefix{
	{prefix: "sk-ant-api03-"}, {prefix: "sk-ant-oat01-"}, {prefix: "sk-ant-ort01-"},
	{prefix: "sk-ant-admin01-"}, {prefix: "sk-ant-"},
	{prefix: "sk-proj-"}, {prefix: "sk-svcacct-"}, {prefix: "sk-admin-"}, {prefix: "sk-or-v1-"}, {prefix: "sk-"},
	{prefix: "sk_live_"}, {prefix: "sk_test_"}, {prefix: "rk_live_"}, {prefix: "rk_test_"},
	{prefix: "ghp_"}, {prefix: "gho_"}, {prefix: "ghu_"}, {prefix: "ghs_"}, {prefix: "ghr_"},
	{prefix: "github_pat_", keep: "_"},
	{prefix: "glpat-"}, {prefix: "gldt-"}, {prefix: "glrt-"}, {prefix: "glptt-"}, {prefix: "gloas-"},
	{prefix: "xoxb-", keep: "-"}, {prefix: "xoxp-", keep: "-"}, {prefix: "xoxa-", keep: "-"},
	{prefix: "xoxr-", keep: "-"}, {prefix: "xoxe-", keep: "-"}, {prefix: "xapp-", keep: "-"},
	{prefix: "hf_"}, {prefix: "AIza"}, {prefix: "gsk_"}, {prefix: "npm_"}, {prefix: "xai-"},
	{prefix: "sgamp_"},
}

// knownPrefix returns the longest known prefix v starts with.
func knownPrefix(v string) (tokenPrefix, bool) {
	var best tokenPrefix
	for _, p := range knownPrefixes {
		if strings.HasPrefix(v, p.prefix) && len(p.prefix) > len(best.prefix) {
			best = p
		}
	}
	return best, best.prefix != ""
}

// maxTokenLen bounds what is treated as a token; anything longer (a
// certificate, a JSON document) gets the generic placeholder.
const maxTokenLen = 4096

// tokenLike reports whether v is made of the characters API tokens use:
// letters, digits, "-_.~" and standard base64's "+/=".
func tokenLike(v string) bool {
	if v == "" || len(v) > maxTokenLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !config.PlaceholderChar(v[i]) && !strings.ContainsRune("+/=", rune(v[i])) {
			return false
		}
	}
	return true
}

// splitJWT returns the header and claims segments and the signature of a
// JWS in compact form (three base64url segments whose first decodes to a
// JSON object with "alg").
func splitJWT(v string) (head, sig string, ok bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			if c := p[i]; !config.PlaceholderChar(c) || c == '.' || c == '~' {
				return "", "", false
			}
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", "", false
	}
	var header map[string]any
	if json.Unmarshal(raw, &header) != nil {
		return "", "", false
	}
	if _, ok := header["alg"]; !ok {
		return "", "", false
	}
	return parts[0] + "." + parts[1] + ".", parts[2], true
}
