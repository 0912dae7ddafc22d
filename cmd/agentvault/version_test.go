package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
)

// releaseBuild is the part of .goreleaser.yaml that decides what
// `agentvault version` prints in a release.
type releaseBuild struct {
	Main    string   `yaml:"main"`
	Env     []string `yaml:"env"`
	Flags   []string `yaml:"flags"`
	Ldflags []string `yaml:"ldflags"`
}

// releaseLdflags renders the release's ldflags with fixed values, so the test
// checks the shipped configuration rather than a copy of it.
func releaseLdflags(t *testing.T, version, commit, date string) releaseBuild {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", ".goreleaser.yaml"))
	if err != nil {
		t.Fatalf("reading the release config: %v", err)
	}
	var cfg struct {
		Builds []releaseBuild `yaml:"builds"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("parsing .goreleaser.yaml: %v", err)
	}
	if len(cfg.Builds) != 1 {
		t.Fatalf(".goreleaser.yaml has %d builds, want 1", len(cfg.Builds))
	}
	b := cfg.Builds[0]
	if b.Main != "./cmd/agentvault" {
		t.Fatalf(".goreleaser.yaml builds main %q, want ./cmd/agentvault", b.Main)
	}
	vals := map[string]string{"Version": version, "Commit": commit, "Date": date}
	for i, f := range b.Ldflags {
		// missingkey=error: a template field this test does not know fails loudly.
		tmpl, err := template.New("ldflags").Option("missingkey=error").Parse(f)
		if err != nil {
			t.Fatalf("ldflags template %q: %v", f, err)
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, vals); err != nil {
			t.Fatalf("ldflags template %q: %v", f, err)
		}
		b.Ldflags[i] = out.String()
	}
	return b
}

// buildAgentvault builds this package into a temporary directory.
func buildAgentvault(t *testing.T, env, flags []string, ldflags string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the binary with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "agentvault")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"build", "-buildvcs=false", "-o", bin}, flags...)
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.CommandContext(ctx, gobin, append(args, ".")...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// runVersion runs `agentvault version` with an empty environment.
func runVersion(t *testing.T, bin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("agentvault version: %v; stderr: %s", err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("agentvault version wrote to stderr: %q", stderr.String())
	}
	return stdout.String()
}

func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	const (
		wantVersion = "1.2.3"
		wantCommit  = "abc1234"
		wantDate    = "2026-11-28T00:00:00Z"
	)

	t.Run("release ldflags", func(t *testing.T) {
		t.Parallel()
		b := releaseLdflags(t, wantVersion, wantCommit, wantDate)
		ld := strings.Join(b.Ldflags, " ")
		for _, v := range []string{"main.version=", "main.commit=", "main.date="} {
			if !strings.Contains(ld, "-X "+v) {
				t.Errorf("release ldflags %q do not set %s", ld, strings.TrimSuffix(v, "="))
			}
		}
		out := runVersion(t, buildAgentvault(t, b.Env, b.Flags, ld))
		for _, want := range []string{wantVersion, wantCommit, wantDate} {
			if !strings.Contains(out, want) {
				t.Errorf("agentvault version = %q, want it to contain %q", out, want)
			}
		}
		if strings.Contains(out, "dev") || strings.Contains(out, "unknown") {
			t.Errorf("agentvault version = %q still shows a default", out)
		}
	})

	t.Run("default build", func(t *testing.T) {
		t.Parallel()
		out := runVersion(t, buildAgentvault(t, nil, nil, ""))
		if !strings.HasPrefix(out, "agentvault dev ") {
			t.Errorf("agentvault version = %q, want it to start with %q", out, "agentvault dev ")
		}
		if strings.Contains(out, wantVersion) {
			t.Errorf("default build reports the release version: %q", out)
		}
	})
}
