package session

import (
	"reflect"
	"slices"
	"testing"
)

func TestUnprotectedCredentials(t *testing.T) {
	ghp := "ghp_" + randomFrom(base62, 36)
	tests := []struct {
		name      string
		env       []string
		protected []string
		want      []string
	}{
		{"by name", []string{"AWS_SECRET_ACCESS_KEY=abc123", "SENTRY_AUTH_TOKEN=x", "DB_PASSWORD=hunter2",
			"MY_SECRET=s", "STRIPE_SECRET_KEY=k", "FOO_APIKEY=k", "TOKEN=t", "deploy_private_key=k"},
			nil, []string{"AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "FOO_APIKEY", "MY_SECRET", "SENTRY_AUTH_TOKEN", "STRIPE_SECRET_KEY", "TOKEN", "deploy_private_key"}},
		{"by value prefix", []string{"SOMETHING=" + ghp, "SLACK=xoxb-1234567890-1234567890-abcdefghijkl",
			"PLAIN=sk-short", "LANG=en_US.UTF-8", "PATH=/usr/bin:/bin"},
			nil, []string{"SLACK", "SOMETHING"}},
		{"a JWT by value", []string{"ID=" + testJWT + "c2lnbmF0dXJlLXNpZ25hdHVyZQ"}, nil, []string{"ID"}},
		{"switches and empty values are not credentials", []string{"HF_HUB_DISABLE_TOKEN=1", "USE_TOKEN=true",
			"EMPTY_TOKEN=", "NO_PASSWORD=off"}, nil, nil},
		{"names that only contain a word", []string{"TOKENIZERS_PARALLELISM=false", "SSH_AUTH_SOCK=/run/ssh",
			"PASSWORD_STORE_DIR=/p", "KEY_FILE=/k"}, nil, nil},
		{"protected ones are not named", []string{"GITHUB_TOKEN=" + ghp, "GH_TOKEN=" + ghp, "OTHER_TOKEN=x"},
			[]string{"GITHUB_TOKEN", "GH_TOKEN"}, []string{"OTHER_TOKEN"}},
		{"a repeated name once", []string{"A_TOKEN=x", "A_TOKEN=y", "malformed"}, nil, []string{"A_TOKEN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := UnprotectedCredentials(tt.env, func(n string) bool { return slices.Contains(tt.protected, n) })
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
