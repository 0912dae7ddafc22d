package session

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestPresetsRequired(t *testing.T) {
	tests := []struct {
		name, host, env, inject, prefix string
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
		found := false
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
	ps[0].Hosts[0] = "evil.example"
	ps[0].Inject[0].Type = "query"
	p, _ := LookupPreset(ps[0].Name)
	p.Env[0] = "CHANGED"
	again := Presets()[0]
	if again.Hosts[0] == "evil.example" || again.Inject[0].Type == "query" || again.Env[0] == "CHANGED" {
		t.Errorf("built-in presets were changed through a copy: %+v", again)
	}
}

func TestZeroConfig(t *testing.T) {
	env := envMap(map[string]string{
		"ANTHROPIC_API_KEY": "a",
		"GH_TOKEN":          "g", // second variable of github
		"OPENAI_API_KEY":    "",  // empty: not a credential
		"GOOGLE_API_KEY":    "x",
		"GEMINI_API_KEY":    "y", // first of gemini's vars wins
		"UNRELATED":         "z",
	})
	cfg := ZeroConfig(env)
	if !cfg.ZeroConfig || cfg.File != "" || cfg.Egress.Default != "allow" || cfg.Guard != (Guard{"block", "redact"}) {
		t.Errorf("zero-config settings = %+v", cfg)
	}
	got := map[string]Credential{}
	for _, c := range cfg.Credentials {
		got[c.Name] = c
	}
	if len(got) != 3 {
		t.Fatalf("credentials = %+v", cfg.Credentials)
	}
	gh := got["github"]
	if gh.Secret != (Ref{"env", "GH_TOKEN"}) || !reflect.DeepEqual(gh.Env, []string{"GITHUB_TOKEN", "GH_TOKEN"}) ||
		gh.Preset != "github" || len(gh.Hosts) != 4 || len(gh.Inject) != 2 {
		t.Errorf("github = %+v", gh)
	}
	if got["gemini"].Secret != (Ref{"env", "GEMINI_API_KEY"}) {
		t.Errorf("gemini secret = %v", got["gemini"].Secret)
	}
	if got["anthropic"].Secret != (Ref{"env", "ANTHROPIC_API_KEY"}) {
		t.Errorf("anthropic secret = %v", got["anthropic"].Secret)
	}
	if b, ok := cfg.LookupBackend("env"); !ok || b.Type != "env" {
		t.Errorf("env backend = %+v %v", b, ok)
	}
	if len(ZeroConfig(envMap(nil)).Credentials) != 0 {
		t.Error("credentials without any variable set")
	}
}
