package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStepSummaryNotThroughPlantedLink: the agent inherits
// GITHUB_STEP_SUMMARY and swaps the file for a link to one of the user's own
// files; agentvault's markdown summary must not be appended through it.
func TestStepSummaryNotThroughPlantedLink(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	victim := filepath.Join(dir, "bashrc")
	if err := os.WriteFile(victim, []byte("original\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	step := filepath.Join(dir, "step-summary.md")
	if err := os.WriteFile(step, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := runSession(t, sessionOpts{
		env:    map[string]string{"GITHUB_STEP_SUMMARY": step, "VICTIM": victim},
		script: `rm -f "$GITHUB_STEP_SUMMARY" && ln -s "$VICTIM" "$GITHUB_STEP_SUMMARY"` + "\n",
	})
	if s.code != 0 {
		t.Fatalf("exit %d", s.code)
	}
	if got := readFileOr(victim, ""); got != "original\n" {
		t.Fatalf("the planted link's target was written:\n%s", got)
	}
	if !strings.Contains(s.stderr, "GITHUB_STEP_SUMMARY") {
		t.Errorf("no warning about the refused step summary:\n%s", s.stderr)
	}
}
