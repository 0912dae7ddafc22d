package config

import (
	"strings"
	"testing"
)

func TestStarter(t *testing.T) {
	tests := []struct {
		presets []string
		want    []string // credential names in order
	}{
		{nil, nil},
		{[]string{"anthropic"}, []string{"anthropic"}},
		{[]string{"github", "OpenAI", "github"}, []string{"github", "openai"}},
		{PresetNames(), PresetNames()},
	}
	for _, tt := range tests {
		data, err := Starter(tt.presets)
		if err != nil {
			t.Fatalf("Starter(%v): %v", tt.presets, err)
		}
		cfg, err := Parse("agentvault.yaml", data)
		if err != nil {
			t.Fatalf("Starter(%v) does not parse: %v\n%s", tt.presets, err, data)
		}
		var names []string
		for _, c := range cfg.Credentials {
			names = append(names, c.Name)
			p, _ := LookupPreset(c.Name)
			if c.Preset != p.Name || c.Secret != (Ref{"env", p.Env[0]}) {
				t.Errorf("credential %+v", c)
			}
		}
		if strings.Join(names, ",") != strings.Join(tt.want, ",") {
			t.Errorf("Starter(%v) credentials = %v", tt.presets, names)
		}
		if cfg.Egress.Default != "allow" || cfg.Guard.Leak != "block" || cfg.Audit.Log != "" {
			t.Errorf("starter settings = %+v", cfg)
		}
		// Every section of the config is explained.
		for _, s := range []string{"version: 1", "backends:", "credentials:", "egress:", "guard:", "audit:",
			"type: exec", "aws-secretsmanager", "infisical", "inject:", "ttl:", "methods:", "paths:", "placeholder:",
			"no_proxy:", "inspect:", "reflection:", "log:"} {
			if !strings.Contains(string(data), s) {
				t.Errorf("starter lacks %q", s)
			}
		}
	}
	if _, err := Starter([]string{"github", "nope"}); err == nil || !strings.Contains(err.Error(), `unknown preset "nope"`) {
		t.Errorf("unknown preset: %v", err)
	}
}

// The commented examples in the starter must be valid once uncommented.
func TestStarterExamplesValid(t *testing.T) {
	data, _ := Starter(nil)
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "# backends:"), strings.HasPrefix(line, "#   "), strings.HasPrefix(line, "# audit:"):
			if strings.HasPrefix(line, "#   secret:") || strings.HasPrefix(line, "#            |") ||
				strings.HasPrefix(line, "#   preset:") || strings.HasPrefix(line, "#   hosts:") ||
				strings.HasPrefix(line, "#   inject:") || strings.HasPrefix(line, "#   env:") ||
				strings.HasPrefix(line, "#   ttl:") || strings.HasPrefix(line, "#   methods:") ||
				strings.HasPrefix(line, "#   paths:") || strings.HasPrefix(line, "#   placeholder:") {
				continue // the field reference, not YAML
			}
			out = append(out, line[2:])
		case strings.HasPrefix(line, "  # - name:"), strings.HasPrefix(line, "  #   "):
			out = append(out, "  "+line[4:])
		case line == "credentials: []":
			out = append(out, "credentials:")
		default:
			out = append(out, line)
		}
	}
	src := strings.Join(out, "\n")
	cfg, err := Parse("uncommented.yaml", []byte(src))
	if err != nil {
		t.Fatalf("uncommented starter: %v\n%s", err, src)
	}
	if len(cfg.Backends) != 4 || len(cfg.Credentials) != 1 || cfg.Audit.Log == "" {
		t.Errorf("uncommented starter = %+v", cfg)
	}
}
