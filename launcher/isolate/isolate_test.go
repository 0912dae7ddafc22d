package isolate

import (
	"slices"
	"testing"
)

func TestHidePaths(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	tests := []struct {
		name       string
		env        map[string]string
		hide, show []string
		has, lacks []string
	}{
		{
			name: "defaults under home, agents' sockets and engine sockets",
			env:  map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000", "SSH_AUTH_SOCK": "/tmp/ssh-x/agent.7"},
			has: []string{"/h/.aws", "/h/.ssh", "/h/.gnupg", "/h/.docker/config.json", "/tmp/ssh-x/agent.7",
				"/run/user/1000/gnupg", "/run/user/1000/bus", "/run/user/1000/docker.sock", "/run/docker.sock",
				"/var/run/docker.sock"},
			// The session's own directory (its CA bundle) lives there.
			lacks: []string{"/run/user/1000"},
		},
		{
			name:  "unset or relative variables add nothing",
			env:   map[string]string{"SSH_AUTH_SOCK": "agent.sock"},
			has:   []string{"/h/.ssh", "/run/docker.sock"},
			lacks: []string{"agent.sock", "/gnupg", "/bus", "gnupg", "bus"},
		},
		{
			name:  "show removes a default, as written",
			env:   map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000", "SSH_AUTH_SOCK": "/tmp/a.sock"},
			show:  []string{"$SSH_AUTH_SOCK", "$XDG_RUNTIME_DIR/bus", "~/.ssh/"},
			has:   []string{"/run/user/1000/gnupg", "/h/.aws"},
			lacks: []string{"/tmp/a.sock", "/run/user/1000/bus", "/h/.ssh"},
		},
		{
			name: "hide adds; XDG config homes are covered too",
			env:  map[string]string{"XDG_CONFIG_HOME": "/xdg"},
			hide: []string{"~/secrets", "/srv/keys/../keys2"},
			has:  []string{"/h/secrets", "/srv/keys2", "/h/.config/gh", "/xdg/gh"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HidePaths("/h", env(tt.env), tt.hide, tt.show)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.has {
				if !slices.Contains(got, p) {
					t.Errorf("%s not hidden: %q", p, got)
				}
			}
			for _, p := range tt.lacks {
				if slices.Contains(got, p) {
					t.Errorf("%s hidden: %q", p, got)
				}
			}
		})
	}
}

func TestHidePathsRefuses(t *testing.T) {
	for _, hide := range []string{"relative/path", "$HOME/x", "", "~", "/a\x00b"} {
		if _, err := HidePaths("/h", func(string) (string, bool) { return "", false }, []string{hide}, nil); err == nil {
			t.Errorf("hide %q accepted", hide)
		}
	}
	if _, err := HidePaths("rel", func(string) (string, bool) { return "", false }, nil, nil); err == nil {
		t.Error("relative home accepted")
	}
}

func TestIsDefault(t *testing.T) {
	for p, want := range map[string]bool{
		"~/.aws": true, "~/.aws/": true, "$SSH_AUTH_SOCK": true, "$XDG_RUNTIME_DIR/bus": true,
		"$XDG_RUNTIME_DIR/bus/": true, "/var/run/docker.sock": true, "~/.bashrc": false, "$HOME": false,
	} {
		if got := IsDefault(p); got != want {
			t.Errorf("IsDefault(%q) = %v", p, got)
		}
	}
}
