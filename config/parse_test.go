package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSpecExample(t *testing.T) {
	data, err := os.ReadFile("testdata/spec-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("agentvault.yaml", data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.File != "agentvault.yaml" || cfg.ZeroConfig {
		t.Errorf("File=%q ZeroConfig=%v", cfg.File, cfg.ZeroConfig)
	}
	wantTypes := map[string]string{"vault": "vault", "aws": "aws-secretsmanager", "infisical": "infisical", "op": "exec"}
	if len(cfg.Backends) != len(wantTypes) {
		t.Errorf("backends = %v", cfg.Backends)
	}
	for name, typ := range wantTypes {
		if b := cfg.Backends[name]; b.Type != typ || b.Name != name || b.Line == 0 {
			t.Errorf("backend %s = %+v, want type %s", name, b, typ)
		}
	}
	if len(cfg.Credentials) != 3 {
		t.Fatalf("credentials = %d", len(cfg.Credentials))
	}
	gh, an, st := cfg.Credentials[0], cfg.Credentials[1], cfg.Credentials[2]
	wantGH := Credential{
		Name: "github", Line: gh.Line,
		Secret: Ref{"vault", "secret/agents/github#token"},
		Hosts:  []string{"api.github.com", "github.com", "*.githubusercontent.com"},
		Inject: []InjectRule{{Type: "basic", Username: "x-access-token"}},
		Env:    []string{"GITHUB_TOKEN", "GH_TOKEN"},
		TTL:    10 * time.Minute,
	}
	if !reflect.DeepEqual(gh, wantGH) {
		t.Errorf("github =\n%+v\nwant\n%+v", gh, wantGH)
	}
	if an.Preset != "anthropic" || !reflect.DeepEqual(an.Hosts, []string{"api.anthropic.com"}) ||
		!reflect.DeepEqual(an.Env, []string{"ANTHROPIC_API_KEY"}) ||
		!reflect.DeepEqual(an.Inject, []InjectRule{{Type: "header", Name: "x-api-key", Format: "{{secret}}"}}) ||
		an.Secret != (Ref{"env", "ANTHROPIC_API_KEY"}) {
		t.Errorf("anthropic = %+v", an)
	}
	if st.Secret != (Ref{"aws", "prod/stripe#api_key"}) || !reflect.DeepEqual(st.Methods, []string{"GET"}) ||
		!reflect.DeepEqual(st.Paths, []string{"/v1/charges*"}) || st.Inject[0].Type != "bearer" {
		t.Errorf("stripe = %+v", st)
	}
	wantEgress := Egress{Default: "allow", Allow: []string{"registry.npmjs.org", "*.pypi.org"},
		Deny: []string{"*.pastebin.com"}, NoProxy: []string{"localhost", "127.0.0.1", "::1"}, Inspect: "credentialed"}
	if !reflect.DeepEqual(cfg.Egress, wantEgress) {
		t.Errorf("egress = %+v", cfg.Egress)
	}
	if c, ok := cfg.Credential("stripe"); !ok || c.Name != "stripe" {
		t.Errorf("Credential(stripe) = %+v, %v", c, ok)
	}
	if _, ok := cfg.Credential("nope"); ok {
		t.Error("Credential(nope) found")
	}
	if cfg.Guard != (Guard{"block", "redact"}) || cfg.Audit.Log != "./agentvault-audit.jsonl" {
		t.Errorf("guard=%+v audit=%+v", cfg.Guard, cfg.Audit)
	}
}

func TestParseDefaults(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "---\n", "version: 1\n", "version: 1\ncredentials:\negress:\n"} {
		cfg, err := Parse("a.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if cfg.Egress.Default != "allow" || cfg.Egress.Inspect != "credentialed" ||
			cfg.Guard != (Guard{"block", "redact"}) || len(cfg.Credentials) != 0 || cfg.Backends == nil {
			t.Errorf("%q: defaults not applied: %+v", src, cfg)
		}
	}
}

func TestParseCredentialForms(t *testing.T) {
	const head = "version: 1\ncredentials:\n"
	tests := []struct {
		name string
		src  string
		want Credential // Line is ignored
	}{
		{"inject string", "  - name: a\n    secret: env:A\n    hosts: [API.Example.com]\n    inject: bearer\n",
			Credential{Name: "a", Secret: Ref{"env", "A"}, Hosts: []string{"api.example.com"}, Inject: []InjectRule{{Type: "bearer"}}}},
		{"inject list with hosts", "  - name: gh\n    secret: file:/run/gh\n    hosts: [github.com, api.github.com, \"*.githubusercontent.com\"]\n    inject:\n      - {type: basic, hosts: [github.com]}\n      - {type: bearer, hosts: [api.github.com, raw.githubusercontent.com]}\n",
			Credential{Name: "gh", Secret: Ref{"file", "/run/gh"}, Hosts: []string{"github.com", "api.github.com", "*.githubusercontent.com"},
				Inject: []InjectRule{{Type: "basic", Username: "x-access-token", Hosts: []string{"github.com"}}, {Type: "bearer", Hosts: []string{"api.github.com", "raw.githubusercontent.com"}}}}},
		{"header with format and port", "  - name: h\n    secret: env:H\n    hosts: [\"api.example.com:8443\"]\n    inject: {type: header, name: Authorization, format: \"Token {{secret}}\"}\n",
			Credential{Name: "h", Secret: Ref{"env", "H"}, Hosts: []string{"api.example.com:8443"}, Inject: []InjectRule{{Type: "header", Name: "Authorization", Format: "Token {{secret}}"}}}},
		{"query", "  - name: q\n    secret: env:Q\n    hosts: [maps.example.com]\n    inject: {type: query, name: key}\n",
			Credential{Name: "q", Secret: Ref{"env", "Q"}, Hosts: []string{"maps.example.com"}, Inject: []InjectRule{{Type: "query", Name: "key"}}}},
		{"aws-sigv4 default hosts", "  - name: aws\n    secret: vault:aws/creds/agent\n    inject: aws-sigv4\n",
			Credential{Name: "aws", Secret: Ref{"vault", "aws/creds/agent"}, Hosts: []string{"*.amazonaws.com"}, Inject: []InjectRule{{Type: "aws-sigv4"}}}},
		{"preset overridden in part", "  - name: gh\n    preset: GitHub\n    secret: env:MY_GH\n    env: [MY_TOKEN]\n    inject: placeholder\n    placeholder: ghp_fixed_placeholder_1234\n",
			Credential{Name: "gh", Preset: "github", Secret: Ref{"env", "MY_GH"},
				Hosts:  []string{"api.github.com", "github.com", "*.githubusercontent.com", "uploads.github.com", "*.githubcopilot.com"},
				Inject: []InjectRule{{Type: "placeholder"}}, Env: []string{"MY_TOKEN"}, Placeholder: "ghp_fixed_placeholder_1234"}},
		{"preset env emptied", "  - name: oa\n    preset: openai\n    secret: env:OPENAI_API_KEY\n    env: []\n    methods: [get, Post]\n    ttl: 1h30m\n",
			Credential{Name: "oa", Preset: "openai", Secret: Ref{"env", "OPENAI_API_KEY"}, Hosts: []string{"api.openai.com"},
				Inject: []InjectRule{{Type: "bearer"}}, Env: []string{}, Methods: []string{"GET", "POST"}, TTL: 90 * time.Minute}},
		{"preset rules follow narrowed hosts", "  - name: gh\n    preset: github\n    secret: env:T\n    hosts: [api.github.com]\n",
			Credential{Name: "gh", Preset: "github", Secret: Ref{"env", "T"}, Hosts: []string{"api.github.com"},
				Env: []string{"GITHUB_TOKEN", "GH_TOKEN"}, Inject: []InjectRule{{Type: "bearer", Hosts: []string{"api.github.com"}}}}},
		{"split auth rules", "  - name: s\n    secret: env:S\n    hosts: [a.example.com, b.example.com]\n    inject: [{type: bearer, hosts: [a.example.com]}, {type: basic, username: me, hosts: [b.example.com]}, {type: header, name: X-Key}]\n",
			Credential{Name: "s", Secret: Ref{"env", "S"}, Hosts: []string{"a.example.com", "b.example.com"},
				Inject: []InjectRule{{Type: "bearer", Hosts: []string{"a.example.com"}}, {Type: "basic", Username: "me", Hosts: []string{"b.example.com"}}, {Type: "header", Name: "X-Key", Format: "{{secret}}"}}}},
		{"merge list", "  - {name: one, secret: env:ONE, hosts: [one.example.com]}\n  - <<: [{hosts: [m.example.com], ttl: 1m}, {ttl: 2m, env: [M]}]\n    name: two\n    secret: env:TWO\n",
			Credential{Name: "two", Secret: Ref{"env", "TWO"}, Hosts: []string{"m.example.com"}, TTL: time.Minute, Env: []string{"M"}}},
		{"aws alias and query", "  - name: db\n    secret: aws:prod/db?version_stage=AWSPREVIOUS#password\n    hosts: [db.example.com]\n",
			Credential{Name: "db", Secret: Ref{"aws", "prod/db?version_stage=AWSPREVIOUS#password"}, Hosts: []string{"db.example.com"}}},
		{"anchors and merge", "  - &base {name: one, secret: env:ONE, hosts: [one.example.com]}\n  - <<: *base\n    name: two\n    secret: env:TWO\n",
			Credential{Name: "two", Secret: Ref{"env", "TWO"}, Hosts: []string{"one.example.com"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("f.yaml", []byte(head+tt.src))
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Credentials[len(cfg.Credentials)-1]
			got.Line = 0
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestParseErrors checks every configuration error and the exact position
// printed for it.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the whole message, or its start when it ends in "..."
	}{
		{"unknown top key", "version: 1\ncredential:\n  - name: x\n",
			`a.yaml:2:1: config: unknown key "credential" (known: audit, backends, credentials, egress, guard, isolate, logins, version)`},
		{"unknown credential key", "version: 1\ncredentials:\n  - name: x\n    secret: env:X\n    host: [a.com]\n",
			`a.yaml:5:5: credential "x": unknown key "host" (known: env, hosts, inject, methods, name, paths, placeholder, preset, secret, ttl)`},
		{"unknown egress key", "egress:\n  default: allow\n  alow: [a.com]\n", `a.yaml:3:3: egress: unknown key "alow" ...`},
		{"unknown guard key", "guard:\n  leaks: block\n", `a.yaml:2:3: guard: unknown key "leaks" ...`},
		{"unknown audit key", "audit:\n  file: x\n", `a.yaml:2:3: audit: unknown key "file" (known: log, otlp)`},
		{"unknown inject key", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    inject: {type: basic, user: me}\n",
			`a.yaml:5:27: credential "x": inject: unknown key "user" (known: format, hosts, name, type, username)`},
		{"wrong type hosts", "credentials:\n  - name: x\n    secret: env:X\n    hosts: a.com\n",
			`a.yaml:4:12: credential "x": hosts: expected a list, got a string`},
		{"wrong type name", "credentials:\n  - name: [x]\n    secret: env:X\n", `a.yaml:2:11: credential name: expected a string, got a list`},
		{"wrong type credentials", "credentials:\n  name: x\n", `a.yaml:2:3: credentials: expected a list, got a mapping`},
		{"wrong type credential", "credentials:\n  - x\n", `a.yaml:2:5: credential: expected a mapping, got a string`},
		{"wrong type egress", "egress: deny\n", `a.yaml:1:9: egress: expected a mapping, got a string`},
		{"wrong type backends", "backends: [vault]\n", `a.yaml:1:11: backends: expected a mapping, got a list`},
		{"wrong type host element", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com, {b: c}]\n",
			`a.yaml:4:20: credential "x": hosts: expected a string, got a mapping`},
		{"bool is not a string", "guard:\n  leak: false\n", `a.yaml:2:9: guard.leak: expected a string, got a boolean`},
		{"bad enum", "guard:\n  leak: drop\n", `a.yaml:2:9: guard.leak: "drop" is not one of block, warn, off`},
		{"bad egress default", "egress:\n  default: maybe\n", `a.yaml:2:12: egress.default: "maybe" is not one of allow, deny`},
		{"bad inspect", "egress:\n  inspect: some\n", `a.yaml:2:12: egress.inspect: "some" is not one of credentialed, all`},
		{"bad reflection", "guard:\n  reflection: mask\n", `a.yaml:2:15: guard.reflection: "mask" is not one of redact, off`},
		{"duplicate credential name", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n  - name: x\n    secret: env:Y\n    hosts: [b.com]\n",
			`a.yaml:5:11: duplicate credential name "x" (first defined at line 2)`},
		{"duplicate key", "version: 1\nguard:\n  leak: warn\n  leak: off\n", `a.yaml:4:3: guard: duplicate key "leak" (first at line 3)`},
		{"duplicate top key", "version: 1\nversion: 1\n", `a.yaml:2:1: config: duplicate key "version" (first at line 1)`},
		{"duplicate backend option", "backends:\n  vault:\n    address: a\n    address: b\n", `a.yaml:4:5: backend "vault": duplicate key "address" (first at line 3)`},
		{"duplicate backend", "backends:\n  vault: {}\n  vault: {}\n", `a.yaml:3:3: backends: duplicate key "vault" (first at line 2)`},
		{"version 2", "version: 2\n", `a.yaml:1:10: version: unsupported version 2 (this agentvault reads version 1)`},
		{"version string", "version: \"1\"\n", `a.yaml:1:10: version: expected a number, got a string`},
		{"bad duration", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    ttl: 10 minutes\n",
			`a.yaml:5:10: credential "x": ttl: "10 minutes" is not a duration (Go syntax: 90s, 10m, 1h30m)`},
		{"duration number", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    ttl: 600\n",
			`a.yaml:5:10: credential "x": ttl: expected a duration such as 90s or 10m, got a number`},
		{"negative duration", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    ttl: -5m\n",
			`a.yaml:5:10: credential "x": ttl: must be positive`},
		{"unknown backend type", "backends:\n  hv:\n    type: hashicorp\n", `a.yaml:3:11: backend "hv": unknown backend type "hashicorp" (known: env, file, exec, vault, aws-secretsmanager, infisical)`},
		{"type defaults to name", "backends:\n  vault2:\n    address: x\n", `a.yaml:2:3: backend "vault2": unknown backend type "vault2" (the type defaults to the name; ...`},
		{"undeclared backend", "credentials:\n  - name: x\n    secret: keychain:foo\n    hosts: [a.com]\n",
			`a.yaml:3:13: credential "x": backend "keychain" is not declared under backends: and is not a backend type (env, file, exec, vault, aws-secretsmanager, infisical, aws)`},
		{"exec needs declaration", "credentials:\n  - name: x\n    secret: exec:op://v/i/f\n    hosts: [a.com]\n",
			`a.yaml:3:13: credential "x": backend "exec" is not declared: an exec backend needs an entry under backends: with its command`},
		{"bad host wildcard", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [\"api.*.com\"]\n",
			`a.yaml:4:13: credential "x": hosts: host pattern "api.*.com": a wildcard is only allowed as the whole first label (*.example.com)`},
		{"host is ip", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [10.0.0.1]\n",
			`a.yaml:4:13: credential "x": hosts: host pattern "10.0.0.1": IP addresses are not credential hosts`},
		{"host is url", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [\"https://a.com\"]\n",
			`a.yaml:4:13: credential "x": hosts: host pattern "https://a.com": a host name, not a URL`},
		{"host too broad", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com, \"*.com\"]\n",
			`a.yaml:4:20: credential "x": host pattern "*.com" is too broad for a credential`},
		{"bad port", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [\"a.com:99999\"]\n",
			`a.yaml:4:13: credential "x": hosts: host pattern "a.com:99999": bad port "99999"`},
		{"bad egress pattern", "egress:\n  deny: [\"*bad.com\"]\n", `a.yaml:2:10: egress.deny: host pattern "*bad.com": ...`},
		{"bad inject type", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    inject: {type: oauth}\n",
			`a.yaml:5:20: credential "x": inject: unknown inject type "oauth" (known: placeholder, bearer, basic, header, query, aws-sigv4)`},
		{"bad inject short type", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    inject: token\n",
			`a.yaml:5:13: credential "x": inject: unknown inject type "token" ...`},
		{"inject without type", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    inject: {name: X-Key}\n",
			`a.yaml:5:13: credential "x": inject: a rule needs a type (placeholder, bearer, basic, header, query, aws-sigv4)`},
		{"header without name", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    inject: header\n",
			`a.yaml:5:13: credential "x": inject: type header needs a name, e.g. {type: header, name: X-Api-Key}`},
		{"username on bearer", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    inject: {type: bearer, username: u}\n",
			`a.yaml:5:28: credential "x": inject: username does not apply to type bearer`},
		{"format without token", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    inject: {type: header, name: X-K, format: \"Bearer\"}\n",
			`a.yaml:5:47: credential "x": inject: format must contain {{secret}}`},
		{"reserved header", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    inject: {type: header, name: Host}\n",
			`a.yaml:5:34: credential "x": inject: header Host is managed by the proxy`},
		{"inject hosts not subset", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [api.a.com, \"*.b.com\"]\n    inject:\n      - {type: bearer, hosts: [x.b.com]}\n      - {type: basic, hosts: [a.com]}\n",
			`a.yaml:7:31: credential "x": inject host "a.com" is not one of the credential's hosts`},
		{"inject hosts port mismatch", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [api.a.com]\n    inject: {type: bearer, hosts: [\"api.a.com:8443\"]}\n",
			`a.yaml:5:36: credential "x": inject host "api.a.com:8443" is not one of the credential's hosts`},
		{"conflicting header rules", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com, b.com]\n    inject: [{type: bearer, hosts: [a.com]}, {type: header, name: authorization, hosts: [b.com, a.com]}]\n",
			`a.yaml:2:5: credential "x": inject rules bearer and header both set the Authorization header on the same hosts (use hosts: to split them)`},
		{"merge of a non-mapping", "credentials:\n  - <<: [x]\n    name: a\n", `a.yaml:2:10: credential (merge): expected a mapping, got a string`},
		{"conflicting rules", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    inject: [bearer, basic]\n",
			`a.yaml:2:5: credential "x": inject rules bearer and basic both set the Authorization header on the same hosts (use hosts: to split them)`},
		{"missing name", "credentials:\n  - secret: env:X\n    hosts: [a.com]\n", `a.yaml:2:5: credential at line 2: name is required`},
		{"empty name", "credentials:\n  - name: \"\"\n    secret: env:X\n    hosts: [a.com]\n", `a.yaml:2:11: credential at line 2: name is required`},
		{"bad name", "credentials:\n  - name: my key\n    secret: env:X\n    hosts: [a.com]\n", `a.yaml:2:11: credential "my key": invalid name ...`},
		{"missing secret", "credentials:\n  - name: x\n    hosts: [a.com]\n", `a.yaml:2:5: credential "x": secret is required (e.g. secret: env:VAR)`},
		{"empty secret", "credentials:\n  - name: x\n    secret: \"\"\n    hosts: [a.com]\n", `a.yaml:3:13: credential "x": secret is empty`},
		{"null secret", "credentials:\n  - name: x\n    secret:\n    hosts: [a.com]\n", `a.yaml:3:12: credential "x": secret: expected a string, got nothing`},
		{"secret without backend", "credentials:\n  - name: x\n    secret: sk-live-123\n    hosts: [a.com]\n",
			`a.yaml:3:13: credential "x": secret must be <backend>:<reference>, e.g. env:GITHUB_TOKEN or vault:secret/app#token`},
		{"secret empty ref", "credentials:\n  - name: x\n    secret: \"env:\"\n    hosts: [a.com]\n", `a.yaml:3:13: credential "x": secret: the reference after the backend name and colon is empty`},
		{"no hosts", "credentials:\n  - name: x\n    secret: env:X\n", `a.yaml:2:5: credential "x": no hosts (set hosts: or a preset:)`},
		{"empty hosts overriding preset", "credentials:\n  - name: x\n    preset: openai\n    secret: env:X\n    hosts: []\n", `a.yaml:5:12: credential "x": no hosts (set hosts: or a preset:)`},
		{"unknown preset", "credentials:\n  - name: x\n    preset: opneai\n    secret: env:X\n", `a.yaml:3:13: credential "x": unknown preset "opneai" (known: amp, anthropic, ...`},
		{"bad env name", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    env: [GOOD, 1BAD]\n", `a.yaml:5:17: credential "x": env: "1BAD" is not an environment variable name`},
		{"env given twice", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    env: [TOKEN]\n  - name: y\n    secret: env:Y\n    hosts: [b.com]\n    env: [TOKEN]\n",
			`a.yaml:9:11: credential "y": env TOKEN is already given to credential "x"`},
		{"preset env twice", "credentials:\n  - name: a\n    preset: github\n    secret: env:A\n  - name: b\n    preset: github\n    secret: env:B\n",
			`a.yaml:5:5: credential "b": env GITHUB_TOKEN is already given to credential "a"`},
		{"bad method", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    methods: [\"GET /\"]\n", `a.yaml:5:15: credential "x": methods: "GET /" is not an HTTP method`},
		{"bad path", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    paths: [v1/*]\n", `a.yaml:5:13: credential "x": paths: "v1/*" must start with / or *`},
		{"short placeholder", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    placeholder: abc\n", `a.yaml:5:18: credential "x": placeholder: a placeholder needs 12 to 512 characters, ...`},
		{"placeholder chars", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    placeholder: \"abc def ghi jkl\"\n", `a.yaml:5:18: credential "x": placeholder: a placeholder may only hold ...`},
		{"placeholder twice", "credentials:\n  - name: x\n    secret: env:X\n    hosts: [a.com]\n    placeholder: same-placeholder\n  - name: y\n    secret: env:Y\n    hosts: [b.com]\n    placeholder: same-placeholder\n",
			`a.yaml:9:18: credential "y": placeholder is the same as credential "x"'s`},
		{"no_proxy with comma", "egress:\n  no_proxy: [\"a.com,b.com\"]\n", `a.yaml:2:14: egress.no_proxy: "a.com,b.com" is not a single NO_PROXY entry`},
		{"two documents", "version: 1\n---\nversion: 1\n", `a.yaml:2:1: only one YAML document is allowed`},
		{"bad backend name", "backends:\n  \"my:vault\": {type: vault}\n", `a.yaml:2:3: backends: invalid backend name "my:vault" ...`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("a.yaml", []byte(tt.src))
			assertConfigError(t, err, tt.want)
		})
	}
}

func assertConfigError(t *testing.T, err error, want string) {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v (%T), want *ConfigError %q", err, err, want)
	}
	got := err.Error()
	if prefix, ok := strings.CutSuffix(want, "..."); ok {
		if !strings.HasPrefix(got, prefix) {
			t.Errorf("error\n got %s\nwant %s", got, want)
		}
		return
	}
	if got != want {
		t.Errorf("error\n got %s\nwant %s", got, want)
	}
}

// TestParseNeverEchoesSecret guards the case of a real token pasted where a
// reference belongs.
func TestParseNeverEchoesSecret(t *testing.T) {
	const token = "ghp_R3alT0kenValue1234567890abcdefABCD"
	for _, src := range []string{
		"credentials:\n  - name: x\n    secret: " + token + "\n    hosts: [a.com]\n",
		"credentials:\n  - name: x\n    secret: \"" + token + " trailing\"\n    hosts: [a.com]\n",
	} {
		_, err := Parse("a.yaml", []byte(src))
		if err == nil {
			t.Fatal("no error")
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("error echoes the secret: %v", err)
		}
	}
}

func TestConfigErrorFormat(t *testing.T) {
	tests := []struct {
		e    ConfigError
		want string
	}{
		{ConfigError{File: "f.yaml", Line: 3, Column: 7, Msg: "m"}, "f.yaml:3:7: m"},
		{ConfigError{File: "f.yaml", Line: 3, Msg: "m"}, "f.yaml:3: m"},
		{ConfigError{File: "f.yaml", Msg: "m"}, "f.yaml: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
