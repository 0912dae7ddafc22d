package e2e

import (
	"crypto/subtle"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// gitServer is git.example.test: smart HTTP through git-http-backend, behind
// Basic auth that accepts only x-access-token with the real secret.
type gitServer struct {
	Port int
	Bare string // path of the bare repository served as /repo.git

	mu   sync.Mutex
	reqs []recordedRequest
}

func newGitServer(t *testing.T, secret string) *gitServer {
	t.Helper()
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		t.Skipf("git-http-backend not installed: %v", err)
	}
	root := t.TempDir()
	g := &gitServer{Bare: filepath.Join(root, "repo.git")}
	gitCmd(t, root, "init", "-q", "--bare", "-b", "main", g.Bare)
	gitCmd(t, root, "--git-dir", g.Bare, "config", "http.receivepack", "true")

	seed := t.TempDir()
	gitCmd(t, seed, "init", "-q", "-b", "main", ".")
	if err := os.WriteFile(filepath.Join(seed, "README"), []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, seed, "add", "README")
	gitCmd(t, seed, "commit", "-q", "-m", "seed commit")
	gitCmd(t, seed, "push", "-q", g.Bare, "main")

	backend := &cgi.Handler{
		Path:       gitHTTPBackend,
		Root:       "/",
		Env:        []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
		InheritEnv: []string{"PATH"},
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.reqs = append(g.reqs, recordedRequest{
			Method: r.Method, Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Header: r.Header.Clone(), TLS: r.TLS != nil,
		})
		g.mu.Unlock()
		user, pass, ok := r.BasicAuth()
		if !ok || user != "x-access-token" || subtle.ConstantTimeCompare([]byte(pass), []byte(secret)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="e2e git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	})

	g.Port = serveTLS(t, handler, testCA.serverTLS())
	return g
}

func (g *gitServer) requests() []recordedRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]recordedRequest(nil), g.reqs...)
}

// log returns the subjects on main, newest first.
func (g *gitServer) log(t *testing.T) []string {
	t.Helper()
	out := gitCmd(t, "", "--git-dir", g.Bare, "log", "--format=%s", "main")
	return strings.Split(strings.TrimSpace(out), "\n")
}

// gitCmd runs git with a minimal, predictable environment.
func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func gitEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.test",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.test",
	}
}

// writeGitHome writes a minimal ~/.gitconfig: identity, no credential helper.
func writeGitHome(t *testing.T, home string) {
	t.Helper()
	cfg := "[user]\n\tname = e2e\n\temail = e2e@example.test\n" +
		"[init]\n\tdefaultBranch = main\n[credential]\n\thelper =\n"
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}
