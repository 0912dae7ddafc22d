package config

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/agentvault/agentvault/vocab"
)

func TestPresetsRequired(t *testing.T) {
	tests := []struct {
		name, host, env string
		inject          vocab.InjectType
		prefix          string
	}{
		{"anthropic", "api.anthropic.com", "ANTHROPIC_API_KEY", "header", "sk-ant-api03-"},
		{"openai", "api.openai.com", "OPENAI_API_KEY", "bearer", "sk-proj-"},
		{"github", "api.github.com", "GITHUB_TOKEN", "bearer", "ghp_"},
		{"gitlab", "gitlab.com", "GITLAB_TOKEN", "header", "glpat-"},
		{"gemini", "generativelanguage.googleapis.com", "GEMINI_API_KEY", "header", "AIza"},
		{"huggingface", "huggingface.co", "HF_TOKEN", "bearer", "hf_"},
		{"slack", "slack.com", "SLACK_BOT_TOKEN", "bearer", "xoxb-"},
		{"stripe", "api.stripe.com", "STRIPE_API_KEY", "bearer", "sk_live_"},
		{"npm", "registry.npmjs.org", "NPM_TOKEN", "bearer", "npm_"},
		{"openrouter", "openrouter.ai", "OPENROUTER_API_KEY", "bearer", "sk-or-v1-"},
		{"mistral", "api.mistral.ai", "MISTRAL_API_KEY", "bearer", ""},
		{"groq", "api.groq.com", "GROQ_API_KEY", "bearer", "gsk_"},
		{"deepseek", "api.deepseek.com", "DEEPSEEK_API_KEY", "bearer", "sk-"},
		{"xai", "api.x.ai", "XAI_API_KEY", "bearer", "xai-"},
		// Agent CLIs' own variables: the client sends them, the proxy swaps.
		{"anthropic-bearer", "api.anthropic.com", "ANTHROPIC_AUTH_TOKEN", "placeholder", ""},
		{"claude-code", "api.anthropic.com", "CLAUDE_CODE_OAUTH_TOKEN", "placeholder", "sk-ant-oat01-"},
		{"codex", "chatgpt.com", "CODEX_API_KEY", "placeholder", "sk-proj-"},
		{"codex-access-token", "chatgpt.com", "CODEX_ACCESS_TOKEN", "placeholder", ""},
		{"copilot", "api.github.com", "COPILOT_GITHUB_TOKEN", "placeholder", "github_pat_"},
		{"cursor", "*.cursor.sh", "CURSOR_API_KEY", "placeholder", ""},
		{"amp", "ampcode.com", "AMP_API_KEY", "placeholder", "sgamp_"},
		{"continue", "api.continue.dev", "CONTINUE_API_KEY", "placeholder", ""},
		{"opencode", "opencode.ai", "OPENCODE_API_KEY", "placeholder", ""},
	}
	for _, tt := range tests {
		p, ok := LookupPreset(tt.name)
		if !ok {
			t.Errorf("preset %s missing", tt.name)
			continue
		}
		if !contains(p.Hosts, tt.host) || !contains(p.Env, tt.env) || p.PlaceholderPrefix != tt.prefix || p.Description == "" {
			t.Errorf("preset %s = %+v", tt.name, p)
		}
		found := tt.inject == vocab.InjectPlaceholder && len(p.Inject) == 0
		for _, r := range p.Inject {
			found = found || r.Type == tt.inject
		}
		if !found {
			t.Errorf("preset %s: no %s rule in %+v", tt.name, tt.inject, p.Inject)
		}
	}
	if len(Presets()) < len(tests) {
		t.Errorf("Presets() has %d entries", len(Presets()))
	}
}

func TestPresetDetails(t *testing.T) {
	gh, _ := LookupPreset("github")
	want := []InjectRule{
		{Type: "basic", Username: "x-access-token", Hosts: []string{"github.com"}},
		{Type: "bearer", Hosts: []string{"api.github.com", "uploads.github.com", "*.githubusercontent.com"}},
	}
	if !reflect.DeepEqual(gh.Inject, want) || !reflect.DeepEqual(gh.Env, []string{"GITHUB_TOKEN", "GH_TOKEN"}) {
		t.Errorf("github = %+v", gh)
	}
	an, _ := LookupPreset("ANTHROPIC")
	if !reflect.DeepEqual(an.Inject, []InjectRule{{Type: "header", Name: "x-api-key", Format: "{{secret}}"}}) {
		t.Errorf("anthropic inject = %+v", an.Inject)
	}
	if _, ok := LookupPreset("nope"); ok {
		t.Error("unknown preset found")
	}
}

// Every preset must be valid as a config credential (hosts, rules, subsets),
// and all of them together must not clash (env variables).
func TestPresetsParse(t *testing.T) {
	var b strings.Builder
	b.WriteString("credentials:\n")
	for _, p := range Presets() {
		fmt.Fprintf(&b, "  - name: %s\n    preset: %s\n    secret: env:%s\n", p.Name, p.Name, p.Env[0])
	}
	cfg, err := Parse("all.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range Presets() {
		c := cfg.Credentials[i]
		if !reflect.DeepEqual(c.Hosts, p.Hosts) || !reflect.DeepEqual(c.Env, p.Env) || !reflect.DeepEqual(c.Inject, p.Inject) {
			t.Errorf("credential from preset %s = %+v", p.Name, c)
		}
	}
	names := PresetNames()
	if !sort.StringsAreSorted(names) {
		t.Errorf("presets not sorted: %v", names)
	}
}

func TestPresetsAreCopies(t *testing.T) {
	ps := Presets()
	i := slices.IndexFunc(ps, func(p Preset) bool { return p.Name == "github" })
	ps[i].Hosts[0] = "evil.example"
	ps[i].Inject[0].Type = "query"
	p, _ := LookupPreset(ps[i].Name)
	p.Env[0] = "CHANGED"
	again := Presets()[i]
	if again.Hosts[0] == "evil.example" || again.Inject[0].Type == "query" || again.Env[0] == "CHANGED" {
		t.Errorf("built-in presets were changed through a copy: %+v", again)
	}
}

// Each row is agentvault's environment; want maps credential name to the
// variable read and the variables given the placeholder (only those set).
func TestZeroConfig(t *testing.T) {
	type cred struct {
		secret string
		env    []string
	}
	tests := []struct {
		name string
		env  map[string]string
		want map[string]cred
	}{
		{"nothing set", nil, map[string]cred{}},
		{"empty is not set", map[string]string{"OPENAI_API_KEY": ""}, map[string]cred{}},
		{"unrelated", map[string]string{"UNRELATED_API_KEY": "x"}, map[string]cred{}},
		{"second variable of a preset alone", map[string]string{"GH_TOKEN": "g"},
			map[string]cred{"github": {"GH_TOKEN", []string{"GH_TOKEN"}}}},
		{"gemini: only GEMINI_API_KEY set, GOOGLE_API_KEY stays unset", map[string]string{"GEMINI_API_KEY": "y"},
			map[string]cred{"gemini": {"GEMINI_API_KEY", []string{"GEMINI_API_KEY"}}}},
		{"gemini: both set, first is read, both hidden", map[string]string{"GEMINI_API_KEY": "y", "GOOGLE_API_KEY": "x"},
			map[string]cred{"gemini": {"GEMINI_API_KEY", []string{"GEMINI_API_KEY", "GOOGLE_API_KEY"}}}},
		{"agent CLIs in CI", map[string]string{
			"CLAUDE_CODE_OAUTH_TOKEN": "a", "ANTHROPIC_AUTH_TOKEN": "b", "CODEX_API_KEY": "c",
			"COPILOT_GITHUB_TOKEN": "d", "GITHUB_TOKEN": "e", "ANTHROPIC_API_KEY": "f",
		}, map[string]cred{
			"claude-code":      {"CLAUDE_CODE_OAUTH_TOKEN", []string{"CLAUDE_CODE_OAUTH_TOKEN"}},
			"anthropic-bearer": {"ANTHROPIC_AUTH_TOKEN", []string{"ANTHROPIC_AUTH_TOKEN"}},
			"anthropic":        {"ANTHROPIC_API_KEY", []string{"ANTHROPIC_API_KEY"}},
			"codex":            {"CODEX_API_KEY", []string{"CODEX_API_KEY"}},
			"copilot":          {"COPILOT_GITHUB_TOKEN", []string{"COPILOT_GITHUB_TOKEN"}},
			"github":           {"GITHUB_TOKEN", []string{"GITHUB_TOKEN"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ZeroConfig(envMap(tt.env))
			if !cfg.ZeroConfig || cfg.File != "" || cfg.Egress.Default != "allow" || cfg.Guard != (Guard{"block", "redact"}) {
				t.Errorf("zero-config settings = %+v", cfg)
			}
			if b, ok := cfg.LookupBackend("env"); !ok || b.Type != "env" {
				t.Errorf("env backend = %+v %v", b, ok)
			}
			got := map[string]cred{}
			for _, c := range cfg.Credentials {
				p, _ := LookupPreset(c.Name)
				if c.Preset != c.Name || !reflect.DeepEqual(c.Hosts, p.Hosts) || !reflect.DeepEqual(c.Inject, p.Inject) || c.Secret.Backend != "env" {
					t.Errorf("credential %s does not follow its preset: %+v", c.Name, c)
				}
				got[c.Name] = cred{c.Secret.Ref, c.Env}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("credentials = %v, want %v", got, tt.want)
			}
		})
	}
}

// The survey of agent CLIs (docs/configuration.md#presets): every variable
// they read a key from is a preset variable bound to the host they send it to.
func TestAgentVariablesCovered(t *testing.T) {
	tests := []struct{ agent, variable, host string }{
		{"claude code", "ANTHROPIC_API_KEY", "api.anthropic.com"},
		{"claude code", "ANTHROPIC_AUTH_TOKEN", "api.anthropic.com"},
		{"claude code", "CLAUDE_CODE_OAUTH_TOKEN", "api.anthropic.com"},
		{"codex", "CODEX_API_KEY", "api.openai.com"},
		{"codex", "CODEX_API_KEY", "chatgpt.com"},
		{"codex", "CODEX_ACCESS_TOKEN", "chatgpt.com"},
		{"codex", "OPENAI_API_KEY", "api.openai.com"},
		{"gemini-cli", "GEMINI_API_KEY", "generativelanguage.googleapis.com"},
		{"gemini-cli", "GOOGLE_API_KEY", "generativelanguage.googleapis.com"},
		{"aider", "OPENROUTER_API_KEY", "openrouter.ai"},
		{"aider", "DEEPSEEK_API_KEY", "api.deepseek.com"},
		{"aider", "XAI_API_KEY", "api.x.ai"},
		{"aider", "GROQ_API_KEY", "api.groq.com"},
		{"aider", "MISTRAL_API_KEY", "api.mistral.ai"},
		{"opencode", "OPENCODE_API_KEY", "opencode.ai"},
		{"goose", "GOOGLE_API_KEY", "generativelanguage.googleapis.com"},
		{"cursor-agent", "CURSOR_API_KEY", "api2.cursor.sh"},
		{"amp", "AMP_API_KEY", "ampcode.com"},
		{"copilot cli", "COPILOT_GITHUB_TOKEN", "api.github.com"},
		{"copilot cli", "COPILOT_GITHUB_TOKEN", "api.individual.githubcopilot.com"},
		{"copilot cli", "GH_TOKEN", "api.githubcopilot.com"},
		{"copilot cli", "GITHUB_TOKEN", "api.github.com"},
		{"continue", "CONTINUE_API_KEY", "api.continue.dev"},
	}
	for _, tt := range tests {
		var owners []string
		for _, p := range Presets() {
			if contains(p.Env, tt.variable) {
				owners = append(owners, p.Name)
				if !slices.ContainsFunc(p.Hosts, func(h string) bool { return hostMatches(h, tt.host) }) {
					t.Errorf("%s: %s (preset %s) is not bound to %s: %v", tt.agent, tt.variable, p.Name, tt.host, p.Hosts)
				}
			}
		}
		if len(owners) != 1 {
			t.Errorf("%s: %s belongs to presets %v, want exactly one", tt.agent, tt.variable, owners)
		}
	}
}

// hostMatches is the pattern rule of docs/configuration.md#host-patterns,
// enough for the presets (no ports).
func hostMatches(pattern, host string) bool {
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+rest)
	}
	return pattern == host
}
