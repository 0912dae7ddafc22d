package config

import (
	"os"
	"strings"

	"github.com/agentvault/agentvault/vocab"
)

// Preset is a built-in service description: where its token goes, which
// variables carry it, and how it is put on requests. Each variable belongs to
// one preset only.
type Preset struct {
	Name   string
	Hosts  []string
	Env    []string // the first one set is read in zero-config mode
	Inject []InjectRule
	// PlaceholderPrefix starts the placeholder of a value that is not shaped
	// like a token; a token's placeholder keeps the token's own format.
	PlaceholderPrefix string
	Description       string
}

func bearer(hosts ...string) InjectRule { return InjectRule{Type: vocab.InjectBearer, Hosts: hosts} }

func header(name string, hosts ...string) InjectRule {
	return InjectRule{Type: vocab.InjectHeader, Name: name, Format: vocab.SecretToken, Hosts: hosts}
}

func basic(user string, hosts ...string) InjectRule {
	return InjectRule{Type: vocab.InjectBasic, Username: user, Hosts: hosts}
}

// presets is ordered by name for listings. Rules carry hosts: only where a
// credential's hosts need different treatment. A preset without rules relies
// on placeholder substitution alone: its client always sends the key in a
// header of its choosing, and a host several presets share (api.anthropic.com)
// then gets no header the client did not ask for.
var presets = []Preset{
	{
		Name:              "amp",
		Hosts:             []string{"ampcode.com"},
		Env:               []string{"AMP_API_KEY"},
		PlaceholderPrefix: "sgamp_",
		Description:       "Amp coding agent",
	},
	{
		Name:              "anthropic",
		Hosts:             []string{"api.anthropic.com"},
		Env:               []string{"ANTHROPIC_API_KEY"},
		Inject:            []InjectRule{header("x-api-key")},
		PlaceholderPrefix: "sk-ant-api03-",
		Description:       "Anthropic API (Claude)",
	},
	{
		// Claude Code sends it as "Authorization: Bearer" (gateways, proxies).
		Name:        "anthropic-bearer",
		Hosts:       []string{"api.anthropic.com"},
		Env:         []string{"ANTHROPIC_AUTH_TOKEN"},
		Description: "Anthropic API, bearer token (Claude Code)",
	},
	{
		// The long-lived token of `claude setup-token`, how Claude Code
		// authenticates in CI.
		Name:              "claude-code",
		Hosts:             []string{"api.anthropic.com"},
		Env:               []string{"CLAUDE_CODE_OAUTH_TOKEN"},
		PlaceholderPrefix: "sk-ant-oat01-",
		Description:       "Claude Code OAuth token",
	},
	{
		// codex sends its key to both the API and the ChatGPT backend.
		Name:              "codex",
		Hosts:             []string{"api.openai.com", "chatgpt.com"},
		Env:               []string{"CODEX_API_KEY"},
		PlaceholderPrefix: "sk-proj-",
		Description:       "OpenAI Codex CLI API key",
	},
	{
		Name:        "codex-access-token",
		Hosts:       []string{"chatgpt.com"},
		Env:         []string{"CODEX_ACCESS_TOKEN"},
		Description: "OpenAI Codex CLI ChatGPT access token",
	},
	{
		Name:        "continue",
		Hosts:       []string{"api.continue.dev"},
		Env:         []string{"CONTINUE_API_KEY"},
		Description: "Continue CLI (cn)",
	},
	{
		// Copilot CLI reads this first, then GH_TOKEN and GITHUB_TOKEN (the
		// github preset), and talks to the GitHub API and the Copilot API.
		Name:              "copilot",
		Hosts:             []string{"api.github.com", "*.githubcopilot.com"},
		Env:               []string{"COPILOT_GITHUB_TOKEN"},
		PlaceholderPrefix: "github_pat_",
		Description:       "GitHub Copilot CLI",
	},
	{
		Name:        "cursor",
		Hosts:       []string{"*.cursor.sh", "*.cursorapi.com"},
		Env:         []string{"CURSOR_API_KEY"},
		Description: "Cursor CLI (cursor-agent)",
	},
	{
		Name:              "deepseek",
		Hosts:             []string{"api.deepseek.com"},
		Env:               []string{"DEEPSEEK_API_KEY"},
		Inject:            []InjectRule{bearer()},
		PlaceholderPrefix: "sk-",
		Description:       "DeepSeek API",
	},
	{
		Name:              "gemini",
		Hosts:             []string{"generativelanguage.googleapis.com"},
		Env:               []string{"GEMINI_API_KEY", "GOOGLE_API_KEY"},
		Inject:            []InjectRule{header("x-goog-api-key")},
		PlaceholderPrefix: "AIza",
		Description:       "Google Gemini API",
	},
	{
		Name:  "github",
		Hosts: []string{"api.github.com", "github.com", "*.githubusercontent.com", "uploads.github.com", "*.githubcopilot.com"},
		Env:   []string{"GITHUB_TOKEN", "GH_TOKEN"},
		// git over HTTPS authenticates with Basic; the REST/GraphQL API and
		// raw content take the token as a bearer. Copilot CLI sends the
		// token to the Copilot API itself, where it is only swapped.
		Inject: []InjectRule{
			basic(vocab.DefaultBasicUsername, "github.com"),
			bearer("api.github.com", "uploads.github.com", "*.githubusercontent.com"),
		},
		PlaceholderPrefix: "ghp_",
		Description:       "GitHub API, git over HTTPS and Copilot",
	},
	{
		Name:  "gitlab",
		Hosts: []string{"gitlab.com"},
		Env:   []string{"GITLAB_TOKEN"},
		// git and the API share the host: git reads Basic (any username works
		// with a personal access token), the API reads PRIVATE-TOKEN and
		// ignores Basic, so both are set.
		Inject:            []InjectRule{basic("oauth2"), header("PRIVATE-TOKEN")},
		PlaceholderPrefix: "glpat-",
		Description:       "GitLab.com API and git over HTTPS",
	},
	{
		Name:              "groq",
		Hosts:             []string{"api.groq.com"},
		Env:               []string{"GROQ_API_KEY"},
		Inject:            []InjectRule{bearer()},
		PlaceholderPrefix: "gsk_",
		Description:       "Groq API",
	},
	{
		Name:  "huggingface",
		Hosts: []string{"huggingface.co", "*.huggingface.co", "*.hf.co"},
		Env:   []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"},
		// *.hf.co serves pre-signed CDN downloads that refuse a second
		// Authorization; there the placeholder is only swapped if sent.
		Inject:            []InjectRule{bearer("huggingface.co", "*.huggingface.co")},
		PlaceholderPrefix: "hf_",
		Description:       "Hugging Face Hub",
	},
	{
		Name:        "mistral",
		Hosts:       []string{"api.mistral.ai"},
		Env:         []string{"MISTRAL_API_KEY"},
		Inject:      []InjectRule{bearer()},
		Description: "Mistral AI API",
	},
	{
		Name:              "npm",
		Hosts:             []string{"registry.npmjs.org"},
		Env:               []string{"NPM_TOKEN", "NODE_AUTH_TOKEN"},
		Inject:            []InjectRule{bearer()},
		PlaceholderPrefix: "npm_",
		Description:       "npm registry",
	},
	{
		Name:              "openai",
		Hosts:             []string{"api.openai.com"},
		Env:               []string{"OPENAI_API_KEY"},
		Inject:            []InjectRule{bearer()},
		PlaceholderPrefix: "sk-proj-",
		Description:       "OpenAI API",
	},
	{
		Name:        "opencode",
		Hosts:       []string{"opencode.ai"},
		Env:         []string{"OPENCODE_API_KEY"},
		Description: "OpenCode Zen",
	},
	{
		Name:              "openrouter",
		Hosts:             []string{"openrouter.ai"},
		Env:               []string{"OPENROUTER_API_KEY"},
		Inject:            []InjectRule{bearer()},
		PlaceholderPrefix: "sk-or-v1-",
		Description:       "OpenRouter API",
	},
	{
		Name:              "slack",
		Hosts:             []string{"slack.com", "*.slack.com"},
		Env:               []string{"SLACK_BOT_TOKEN", "SLACK_TOKEN"},
		Inject:            []InjectRule{bearer()},
		PlaceholderPrefix: "xoxb-",
		Description:       "Slack Web API",
	},
	{
		Name:              "stripe",
		Hosts:             []string{"api.stripe.com"},
		Env:               []string{"STRIPE_API_KEY", "STRIPE_SECRET_KEY"},
		Inject:            []InjectRule{bearer()},
		PlaceholderPrefix: "sk_live_",
		Description:       "Stripe API",
	},
	{
		Name:              "xai",
		Hosts:             []string{"api.x.ai"},
		Env:               []string{"XAI_API_KEY"},
		Inject:            []InjectRule{bearer()},
		PlaceholderPrefix: "xai-",
		Description:       "xAI API (Grok)",
	},
}

// Presets returns copies of the built-in presets, ordered by name.
func Presets() []Preset {
	out := make([]Preset, len(presets))
	for i, p := range presets {
		out[i] = p.clone()
	}
	return out
}

// PresetNames lists the preset names in order.
func PresetNames() []string {
	out := make([]string, len(presets))
	for i, p := range presets {
		out[i] = p.Name
	}
	return out
}

// LookupPreset finds a preset by name, ignoring case.
func LookupPreset(name string) (Preset, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, p := range presets {
		if p.Name == name {
			return p.clone(), true
		}
	}
	return Preset{}, false
}

func (p Preset) clone() Preset {
	p.Hosts = append([]string(nil), p.Hosts...)
	p.Env = append([]string(nil), p.Env...)
	p.Inject = cloneRules(p.Inject)
	return p
}

// ZeroConfig is the configuration used when there is no config file: one
// credential per preset with a variable set (non-empty) in agentvault's own
// environment, named after the preset and read through the env backend from
// the first such variable. The child gets the placeholder only in the
// preset's variables that were set: a client that warns when two of them are
// set (gemini-cli with GEMINI_API_KEY and GOOGLE_API_KEY) sees what the user
// set, and a variable set to another value still never reaches the child.
func ZeroConfig(lookupEnv func(string) (string, bool)) *Config {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	cfg := defaultConfig()
	cfg.ZeroConfig = true
	for _, p := range presets {
		var set []string
		for _, v := range p.Env {
			if val, ok := lookupEnv(v); ok && val != "" {
				set = append(set, v)
			}
		}
		if len(set) == 0 {
			continue
		}
		cfg.Credentials = append(cfg.Credentials, Credential{
			Name:   p.Name,
			Secret: Ref{Backend: "env", Ref: set[0]},
			Preset: p.Name,
			Hosts:  append([]string(nil), p.Hosts...),
			Inject: cloneRules(p.Inject),
			Env:    set,
		})
	}
	return cfg
}
