package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// clientCase is one HTTP client an agent might be written with. cmd returns
// a sh snippet that GETs url and saves prefix.status / prefix.body.
type clientCase struct {
	name string
	skip func() string // non-empty: why this client cannot run here
	cmd  func(url, prefix string) string
}

func testdataPath(elem ...string) string {
	p, err := filepath.Abs(filepath.Join(append([]string{"testdata"}, elem...)...))
	if err != nil {
		panic(err)
	}
	return p
}

// skipOutsideCI: a missing tool is a skip on a developer's machine, a
// failure in CI (where .ci/run installs it).
func skipOutsideCI(t *testing.T, reason string) {
	t.Helper()
	if reason == "" {
		return
	}
	if inCI() {
		t.Fatalf("required in CI: %s", reason)
	}
	t.Skip(reason)
}

func clientCases() []clientCase {
	noPython := func() string {
		if pythonExe == "" {
			return "python3 not found"
		}
		return ""
	}
	return []clientCase{
		{name: "curl", skip: needTool("curl"), cmd: func(url, prefix string) string {
			return fmt.Sprintf(`curl -sS --max-time 20 -o "%s.body" -w '%%{http_code}' '%s' > "%s.status" 2> "%s.err"`,
				prefix, url, prefix, prefix)
		}},
		{name: "python-urllib", skip: noPython, cmd: func(url, prefix string) string {
			return fmt.Sprintf(`'%s' '%s' '%s' "%s" 2> "%s.err"`, pythonExe, testdataPath("py", "urllib_get.py"), url, prefix, prefix)
		}},
		{name: "python-requests", skip: func() string {
			if r := noPython(); r != "" {
				return r
			}
			if !pyRequests {
				return "python3 has no requests module"
			}
			return ""
		}, cmd: func(url, prefix string) string {
			return fmt.Sprintf(`'%s' '%s' '%s' "%s" 2> "%s.err"`, pythonExe, testdataPath("py", "requests_get.py"), url, prefix, prefix)
		}},
		{name: "go", skip: func() string { return "" }, cmd: func(url, prefix string) string {
			return fmt.Sprintf(`'%s' get '%s' "%s" 2> "%s.err"`, goClientBin, url, prefix, prefix)
		}},
		{name: "node", skip: func() string {
			if r := needTool("node")(); r != "" {
				return r
			}
			if _, err := os.Stat(testdataPath("node", "node_modules", "undici")); err != nil {
				return "e2e/testdata/node/node_modules missing: run npm ci there"
			}
			return ""
		}, cmd: func(url, prefix string) string {
			return fmt.Sprintf(`node --require '%s' '%s' '%s' "%s" 2> "%s.err"`,
				testdataPath("node", "preload.cjs"), testdataPath("node", "get.mjs"), url, prefix, prefix)
		}},
	}
}

func needTool(name string) func() string {
	return func() string {
		if _, err := exec.LookPath(name); err != nil {
			return name + " not found in PATH"
		}
		return ""
	}
}
