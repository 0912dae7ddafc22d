package launcher

import (
	"slices"
	"sort"
	"strings"
	"testing"
)

const (
	testProxy  = "http://agentvault:pw@127.0.0.1:4242"
	testBundle = "/run/av/bundle.pem"
	testCA     = "/run/av/ca.pem"
)

func baseSpec(base ...string) EnvSpec {
	return EnvSpec{
		Base:       base,
		ProxyURL:   testProxy,
		BundlePath: testBundle,
		CAPath:     testCA,
		SessionID:  "av-1234",
	}
}

// envMap checks the invariants every BuildEnv result must meet and returns
// the environment as a map.
func envMap(t *testing.T, env []string) map[string]string {
	t.Helper()
	keys := make([]string, 0, len(env))
	m := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv[min(1, len(kv)):], "=")
		k = kv[:min(1, len(kv))] + k
		if !ok || k == "" {
			t.Fatalf("malformed entry %q", kv)
		}
		if _, dup := m[k]; dup {
			t.Errorf("duplicate key %q", k)
		}
		m[k] = v
		keys = append(keys, k)
	}
	if !sort.StringsAreSorted(keys) {
		t.Errorf("keys not sorted: %v", keys)
	}
	return m
}

func TestBuildEnv(t *testing.T) {
	allProxy := []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"}
	tests := []struct {
		name  string
		spec  EnvSpec
		want  map[string]string // exact values
		gone  []string          // keys that must be absent
		check func(t *testing.T, m map[string]string)
	}{
		{
			name: "proxy vars replaced in both cases and odd case variants dropped",
			spec: baseSpec("HTTPS_PROXY=http://corp:3128", "https_proxy=http://corp:3128",
				"Http_Proxy=http://corp:3128", "ALL_PROXY=socks5://corp:1080", "HOME=/home/u"),
			want: map[string]string{
				"HTTPS_PROXY": testProxy, "https_proxy": testProxy, "HTTP_PROXY": testProxy,
				"http_proxy": testProxy, "ALL_PROXY": testProxy, "all_proxy": testProxy,
				"NODE_USE_ENV_PROXY": "1", "HOME": "/home/u",
			},
			gone: []string{"Http_Proxy"},
		},
		{
			name: "NO_PROXY merged from both cases, deduplicated, order kept",
			spec: func() EnvSpec {
				s := baseSpec("NO_PROXY=corp.local, .internal,,localhost", "no_proxy=internal.example,CORP.LOCAL", "No_Proxy=stale")
				s.NoProxy = []string{"extra.test", "::1", "extra.test"}
				return s
			}(),
			want: map[string]string{
				"NO_PROXY": "localhost,127.0.0.1,::1,corp.local,.internal,internal.example,extra.test",
				"no_proxy": "localhost,127.0.0.1,::1,corp.local,.internal,internal.example,extra.test",
			},
			gone: []string{"No_Proxy"},
		},
		{
			name: "NO_PROXY inherited from lower case only",
			spec: baseSpec("no_proxy=svc.cluster.local"),
			want: map[string]string{
				"NO_PROXY": "localhost,127.0.0.1,::1,svc.cluster.local",
				"no_proxy": "localhost,127.0.0.1,::1,svc.cluster.local",
			},
		},
		{
			name: "NO_PROXY wildcard dropped: it would bypass the proxy",
			spec: func() EnvSpec {
				s := baseSpec("NO_PROXY=*,corp.local")
				s.NoProxy = []string{"*"}
				return s
			}(),
			want: map[string]string{
				"NO_PROXY": "localhost,127.0.0.1,::1,corp.local",
				"no_proxy": "localhost,127.0.0.1,::1,corp.local",
			},
		},
		{
			name: "NO_PROXY defaults without inheritance",
			spec: baseSpec(),
			want: map[string]string{"NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1"},
		},
		{
			name: "bundle and CA variables replace inherited trust settings",
			spec: baseSpec("SSL_CERT_FILE=/etc/ssl/old.pem", "CURL_CA_BUNDLE=/old", "GIT_SSL_CAINFO=/old",
				"NODE_EXTRA_CA_CERTS=/corp.pem", "NPM_CONFIG_CAFILE=/old", "SSL_CERT_DIR=/etc/ssl/certs"),
			want: map[string]string{
				"SSL_CERT_FILE": testBundle, "REQUESTS_CA_BUNDLE": testBundle, "CURL_CA_BUNDLE": testBundle,
				"GIT_SSL_CAINFO": testBundle, "AWS_CA_BUNDLE": testBundle, "PIP_CERT": testBundle,
				"CARGO_HTTP_CAINFO": testBundle, "BUNDLE_SSL_CA_CERT": testBundle,
				"npm_config_cafile": testBundle, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": testBundle,
				"NODE_EXTRA_CA_CERTS": testCA, "DENO_CERT": testCA,
			},
			gone: []string{"NPM_CONFIG_CAFILE", "SSL_CERT_DIR"},
		},
		{
			name: "tool-specific trust variables that are set point at the bundle",
			spec: baseSpec("NIX_SSL_CERT_FILE=/nix/ca.pem", "HTTPLIB2_CA_CERTS=/h.pem",
				"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE=/corp.pem", "WEBSOCKET_CLIENT_CA_BUNDLE=/w.pem",
				"COMPOSER_CAFILE=/c.pem", "HEX_CACERTS_PATH=/x.pem", "YARN_CA_FILE_PATH=/y.pem",
				"nix_ssl_cert_file=/stale"),
			want: map[string]string{
				"NIX_SSL_CERT_FILE": testBundle, "HTTPLIB2_CA_CERTS": testBundle,
				"CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE": testBundle, "WEBSOCKET_CLIENT_CA_BUNDLE": testBundle,
				"COMPOSER_CAFILE": testBundle, "HEX_CACERTS_PATH": testBundle, "YARN_CA_FILE_PATH": testBundle,
			},
			gone: []string{"nix_ssl_cert_file"},
		},
		{
			name: "tool-specific trust variables that are unset or empty stay so",
			spec: baseSpec("HTTPLIB2_CA_CERTS="),
			want: map[string]string{"HTTPLIB2_CA_CERTS": ""},
			gone: []string{"NIX_SSL_CERT_FILE", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", "COMPOSER_CAFILE"},
		},
		{
			name: "git sends the proxy password on its first CONNECT",
			spec: baseSpec("GIT_HTTP_PROXY_AUTHMETHOD=anyauth", "git_http_proxy_authmethod=negotiate"),
			want: map[string]string{"GIT_HTTP_PROXY_AUTHMETHOD": "basic"},
			gone: []string{"git_http_proxy_authmethod"},
		},
		{
			name: "session variables",
			spec: baseSpec("AGENTVAULT_SESSION=", "AGENTVAULT_CONFIG=/x.yaml"),
			want: map[string]string{
				"AGENTVAULT_SESSION": "av-1234", "AGENTVAULT_PROXY": testProxy, "AGENTVAULT_CA": testCA,
				"AGENTVAULT_CONFIG": "/x.yaml",
			},
		},
		{
			name: "consumed variables removed, placeholder wins over Remove",
			spec: func() EnvSpec {
				s := baseSpec("VAULT_TOKEN=hvs.real", "AWS_SECRET_ACCESS_KEY=real", "GITHUB_TOKEN=ghp_real",
					"vault_token=other", "KEEP=1")
				s.Remove = []string{"VAULT_TOKEN", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "NOT_SET"}
				s.Placeholders = map[string]string{"GITHUB_TOKEN": "ghp_agentvault_x"}
				return s
			}(),
			want: map[string]string{"GITHUB_TOKEN": "ghp_agentvault_x", "KEEP": "1", "vault_token": "other"},
			gone: []string{"VAULT_TOKEN", "AWS_SECRET_ACCESS_KEY", "NOT_SET"},
		},
		{
			name: "placeholders set and replace real values",
			spec: func() EnvSpec {
				s := baseSpec("ANTHROPIC_API_KEY=sk-ant-real-secret")
				s.Placeholders = map[string]string{
					"ANTHROPIC_API_KEY": "sk-ant-api03-agentvault-abc",
					"GH_TOKEN":          "ghp_agentvault_y",
				}
				return s
			}(),
			want: map[string]string{"ANTHROPIC_API_KEY": "sk-ant-api03-agentvault-abc", "GH_TOKEN": "ghp_agentvault_y"},
			check: func(t *testing.T, m map[string]string) {
				for k, v := range m {
					if strings.Contains(v, "sk-ant-real-secret") {
						t.Errorf("real secret survived in %s", k)
					}
				}
			},
		},
		{
			name: "placeholder cannot unhook a managed variable",
			spec: func() EnvSpec {
				s := baseSpec()
				s.Placeholders = map[string]string{"HTTPS_PROXY": "bogus", "SSL_CERT_FILE": "bogus"}
				return s
			}(),
			want: map[string]string{"HTTPS_PROXY": testProxy, "SSL_CERT_FILE": testBundle},
		},
		{
			name: "duplicate and malformed base entries collapse",
			spec: baseSpec("A=1", "A=2", "NOEQUALS", "=C:=C:\\", "B=x=y", "HTTPS_PROXY=a", "HTTPS_PROXY=b"),
			want: map[string]string{"A": "2", "B": "x=y", "=C:": "C:\\", "HTTPS_PROXY": testProxy},
			gone: []string{"NOEQUALS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := BuildEnv(tt.spec)
			m := envMap(t, env)
			for _, k := range allProxy {
				if m[k] != testProxy {
					t.Errorf("%s = %q, want the proxy URL", k, m[k])
				}
			}
			if _, ok := m["SSL_CERT_DIR"]; ok {
				t.Error("SSL_CERT_DIR must never reach the child")
			}
			for k, want := range tt.want {
				if got, ok := m[k]; !ok || got != want {
					t.Errorf("%s = %q (present %v), want %q", k, got, ok, want)
				}
			}
			for _, k := range tt.gone {
				if _, ok := m[k]; ok {
					t.Errorf("%s should be absent, got %q", k, m[k])
				}
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func TestBuildEnvDoesNotModifyBase(t *testing.T) {
	base := []string{"HTTPS_PROXY=x", "VAULT_TOKEN=y"}
	orig := slices.Clone(base)
	s := baseSpec(base...)
	s.Remove = []string{"VAULT_TOKEN"}
	BuildEnv(s)
	if !slices.Equal(base, orig) {
		t.Fatalf("Base modified: %v", base)
	}
}

func TestNested(t *testing.T) {
	tests := []struct {
		env  []string
		want bool
	}{
		{nil, false},
		{[]string{"HOME=/h"}, false},
		{[]string{"AGENTVAULT_SESSION="}, false},
		{[]string{"AGENTVAULT_SESSION=av-1"}, true},
		{[]string{"AGENTVAULT_SESSION=av-1", "AGENTVAULT_SESSION="}, true}, // either duplicate counts
		{[]string{"AGENTVAULT_SESSION=", "AGENTVAULT_SESSION=av-1"}, true},
		{[]string{"agentvault_session=av-1"}, false},
		{BuildEnv(baseSpec()), true},
	}
	for _, tt := range tests {
		if got := Nested(tt.env); got != tt.want {
			t.Errorf("Nested(%q) = %v, want %v", tt.env, got, tt.want)
		}
	}
}
