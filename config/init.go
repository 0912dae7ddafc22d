package config

import (
	"bytes"
	"fmt"
	"strings"
)

const starterHead = `# agentvault.yaml: credentials for ` + "`agentvault run -- <command>`" + `.
# The agent gets placeholders; the proxy swaps in the real values only on
# HTTPS requests to each credential's hosts. Check it with ` + "`agentvault check`" + `.
version: 1

# Backends are named instances; a reference "<name>:<ref>" picks one. The
# type defaults to the name, and env:, file:, vault:, aws: and infisical:
# references work without an entry here (with that type's defaults).
# backends:
#   vault:
#     type: vault
#     address: https://vault.example.com:8200   # default $VAULT_ADDR
#     namespace: team-a                         # optional (Enterprise / HCP)
#     auth:                                     # default: $VAULT_TOKEN, then ~/.vault-token
#       method: approle                         # approle, jwt, kubernetes, userpass
#       role_id: my-role-id
#       secret_id_file: /run/secrets/secret_id
#   aws:
#     type: aws-secretsmanager
#     region: eu-west-1        # default: the AWS SDK's chain (env, profile, IMDS)
#     profile: agents          # optional
#   infisical:
#     type: infisical
#     site_url: https://app.infisical.com
#     project_id: your-project-id
#     environment: prod
#     auth: {method: universal-auth}   # $INFISICAL_UNIVERSAL_AUTH_CLIENT_ID/_SECRET
#   op:
#     type: exec               # the command's stdout is the secret
#     command: ["op", "read"]  # the reference is appended as the last argument

# Each credential: a secret reference, the hosts it may be sent to, how it is
# injected, and the variables in which the agent sees its placeholder.
#   secret:  env:NAME | file:PATH | vault:PATH[#field] | aws:ID[?version_stage=..][#key]
#            | infisical:[/path/]NAME | <exec backend>:REFERENCE
#   preset:  a built-in service (` + "`agentvault presets`" + `) giving hosts, env and inject
#   hosts:   [api.example.com, "*.example.com"]   (*.d matches names below d; :port optional)
#   inject:  placeholder (default) | bearer | {type: basic, username: x-access-token}
#            | {type: header, name: X-Api-Key, format: "{{secret}}"} | {type: query, name: key}
#            | aws-sigv4; or a list of rules, each optionally limited with hosts:
#   env:     [VAR, ...]        variables that get the placeholder
#   ttl:     10m               re-resolve after this (default: the lease, else 1h)
#   methods: [GET]             only these methods get the secret (optional)
#   paths:   ["/v1/charges*"]  only these path globs get the secret (optional)
#   placeholder: fixed-value   instead of a random placeholder per session (optional)

`

const starterExample = `  # A credential without a preset, read from Vault:
  # - name: github-vault
  #   secret: vault:secret/agents/github#token
  #   hosts: [api.github.com, github.com, "*.githubusercontent.com"]
  #   inject:
  #     - {type: basic, username: x-access-token, hosts: [github.com]}
  #     - {type: bearer, hosts: [api.github.com, "*.githubusercontent.com"]}
  #   env: [GITHUB_TOKEN, GH_TOKEN]
  #   ttl: 10m
`

const starterTail = `
# Egress policy for the agent's traffic through the proxy.
egress:
  default: allow            # allow | deny (--strict = deny: only credential hosts and allow:)
  allow: []                 # extra allowed host patterns, e.g. [registry.npmjs.org, "*.pypi.org"]
  deny: []                  # always refused, e.g. ["*.pastebin.com"]
  no_proxy: []              # extra NO_PROXY entries (localhost, 127.0.0.1, ::1 are always there)
  inspect: credentialed     # credentialed | all (inspect every allowed HTTPS host for leaks)

# Guards on what passes through the proxy.
guard:
  leak: block               # block | warn | off: a real secret headed to a host not bound to it
  reflection: redact        # redact | off: real secrets in responses become placeholders

# Audit log: one JSON line per proxied request (never a secret or a body).
# audit:
#   log: ./agentvault-audit.jsonl
#   otlp:                   # also ship every record to an OpenTelemetry collector (OTLP/HTTP)
#     endpoint: https://otel-collector.example.com:4318
#     headers:
#       Authorization: Bearer ${OTEL_COLLECTOR_TOKEN}   # read from agentvault's environment
`

// Starter returns a commented agentvault.yaml with one credential per named
// preset, each reading the preset's first variable from agentvault's own
// environment. Repeated names count once; an unknown name is an error.
func Starter(presetNames []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(starterHead)
	seen := map[string]bool{}
	var creds []Preset
	for _, n := range presetNames {
		p, ok := LookupPreset(n)
		if !ok {
			return nil, fmt.Errorf("unknown preset %q (known: %s)", n, joinComma(PresetNames()))
		}
		if !seen[p.Name] {
			seen[p.Name] = true
			creds = append(creds, p)
		}
	}
	if len(creds) == 0 {
		b.WriteString("credentials: []\n")
	} else {
		b.WriteString("credentials:\n")
		for _, p := range creds {
			fmt.Fprintf(&b, "  - name: %-14s # %s\n", p.Name, p.Description)
			fmt.Fprintf(&b, "    preset: %-12s # hosts: %s\n", p.Name, strings.Join(p.Hosts, ", "))
			fmt.Fprintf(&b, "    secret: env:%s\n", p.Env[0])
		}
	}
	b.WriteString(starterExample)
	b.WriteString(starterTail)
	return b.Bytes(), nil
}
