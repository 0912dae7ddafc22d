package config

import (
	"reflect"
	"testing"
)

// TestParseIsolate: the isolate key's forms, and its errors with their lines.
func TestParseIsolate(t *testing.T) {
	ok := []struct {
		name, yaml string
		want       Isolate
	}{
		{"absent", "version: 1\n", Isolate{}},
		{"true", "version: 1\nisolate: true\n", Isolate{Enabled: true}},
		{"false", "version: 1\nisolate: false\n", Isolate{}},
		{"mapping enables", "version: 1\nisolate:\n  hide: [~/.ssh, /srv/keys]\n  show: [~/.kube]\n",
			Isolate{Enabled: true, Hide: []string{"~/.ssh", "/srv/keys"}, Show: []string{"~/.kube"}}},
		{"show of a default written with a variable", "version: 1\nisolate:\n  show: [$SSH_AUTH_SOCK, $XDG_RUNTIME_DIR/bus]\n",
			Isolate{Enabled: true, Show: []string{"$SSH_AUTH_SOCK", "$XDG_RUNTIME_DIR/bus"}}},
		{"mapping disabled", "version: 1\nisolate: {enabled: false, hide: [~/.ssh]}\n", Isolate{Hide: []string{"~/.ssh"}}},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("agentvault.yaml", []byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Isolate, c.want) {
				t.Errorf("Isolate = %+v, want %+v", cfg.Isolate, c.want)
			}
		})
	}
	bad := []struct{ name, yaml, want string }{
		{"string", "version: 1\nisolate: please\n", "agentvault.yaml:2:10: isolate: expected true, false or a mapping..."},
		{"relative hide", "version: 1\nisolate:\n  hide:\n    - ~/.ssh\n    - keys/dir\n", "agentvault.yaml:5:7: isolate.hide: \"keys/dir\" is not absolute..."},
		{"show of a non-default", "version: 1\nisolate:\n  show: [~/.bashrc]\n", "agentvault.yaml:3:10: isolate.show: \"~/.bashrc\" is not hidden by default..."},
		{"show of a variable that is not a default", "version: 1\nisolate:\n  show: [$HOME/.aws]\n", "agentvault.yaml:3:10: isolate.show: \"$HOME/.aws\" is not absolute..."},
		{"unknown key", "version: 1\nisolate:\n  hidden: [~/.ssh]\n", "agentvault.yaml:3:3: isolate: unknown key \"hidden\"..."},
		{"enabled not a bool", "version: 1\nisolate: {enabled: 1}\n", "agentvault.yaml:2:20: isolate.enabled: expected true or false..."},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("agentvault.yaml", []byte(c.yaml))
			assertConfigError(t, err, c.want)
		})
	}
}
