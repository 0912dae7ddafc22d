// Package isolate runs the agent in its own Linux user, PID, network, mount
// and IPC namespaces (agentvault run --isolate), so that it can reach nothing
// but the session proxy, see no process outside its sandbox and read none of
// the usual credential files.
//
// The sandbox is set up by agentvault's own binary re-executed as the PID 1 of
// the new namespaces (see Main): it maps the invoking user's uid and gid,
// mounts a fresh /proc, brings up loopback, covers the hidden paths, opens the
// proxy's listener inside the sandbox and hands it to agentvault, then drops
// every capability and starts the command. agentvault keeps a control socket
// to it; nothing secret ever crosses it.
//
// Invariants:
//   - the command never starts unless every step succeeded; a refused step is
//     a *Refused error, never a fallback to running without isolation;
//   - the command and everything it starts hold no capability in any
//     namespace agentvault created, cannot regain one (no_new_privs, locked
//     securebits, empty bounding set) and die with the sandbox's PID 1;
//   - the sandbox's PID 1 carries no secret (its argv, environment and
//     messages hold only what the command itself gets) and is not dumpable.
package isolate

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Spec is what a sandbox hides and where its command runs.
type Spec struct {
	// Dir is the command's working directory, absolute. The sandbox enters it
	// after the hidden paths are covered, so a working directory inside one
	// shows the cover, not what it hides.
	Dir string
	// Hide lists absolute paths to cover: a directory with an empty tmpfs, any
	// other file with a read-only /dev/null. Paths that do not exist are
	// skipped.
	Hide []string
	// Transparent makes every name resolve to 127.0.0.1 inside the sandbox,
	// answered by the sandbox itself, for clients that ignore the proxy
	// variables; serve the proxy there with Sandbox.ListenTransparent.
	Transparent bool
}

// Refused is isolation that could not be set up here. Its message is one
// paragraph: the step that was refused, the kernel's answer and how to enable
// isolation on this machine.
type Refused struct {
	Step string // what was being done, e.g. "creating the user namespace"
	Err  error
	Hint string // how to enable it, one or two sentences
}

func (e *Refused) Error() string {
	msg := fmt.Sprintf("isolation (--isolate) is not available here: %s was refused (%v).", e.Step, e.Err)
	if e.Hint != "" {
		msg += " " + e.Hint
	}
	return msg + " agentvault does not run the command without isolation when it was asked for."
}

func (e *Refused) Unwrap() error { return e.Err }

// DefaultHidden are the credential stores covered unless config's
// isolate.show names them, as the config writes them ("~" is the home
// directory, "$NAME" the value of an environment variable, skipped where it
// is unset or relative). Sockets count: the network namespace does not cover
// a socket in the file system, and an ssh or gpg agent signs with the user's
// keys, a container engine's socket is root on the host, and the session bus
// reaches the desktop's keyring (Secret Service). The session's own files
// live under $XDG_RUNTIME_DIR too, so only those entries of it are hidden.
var DefaultHidden = []string{
	"~/.aws",
	"~/.azure",
	"~/.config/gcloud",
	"~/.kube",
	"~/.docker/config.json",
	"~/.vault-token",
	"~/.config/gh",
	"~/.git-credentials",
	"~/.netrc",
	"~/.npmrc",
	"~/.pypirc",
	"~/.config/agentvault",
	"~/.local/state/agentvault",
	"~/.ssh",
	"~/.gnupg",
	"~/.password-store",
	"~/.local/share/keyrings",
	"$SSH_AUTH_SOCK",
	"$XDG_RUNTIME_DIR/gnupg",
	"$XDG_RUNTIME_DIR/keyring",
	"$XDG_RUNTIME_DIR/bus",
	"$XDG_RUNTIME_DIR/docker.sock",
	"$XDG_RUNTIME_DIR/podman",
	"$XDG_RUNTIME_DIR/containerd",
	"/run/docker.sock",
	"/var/run/docker.sock",
	"/run/podman/podman.sock",
	"/run/containerd/containerd.sock",
}

// ValidPath checks the syntax of a hide or show entry: an absolute path or
// one starting with "~/".
func ValidPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.ContainsRune(p, 0):
		return errors.New("path contains a NUL byte")
	case filepath.IsAbs(p), strings.HasPrefix(p, "~/") && len(p) > 2:
		return nil
	}
	return fmt.Errorf("%q is not absolute (write /path or ~/path)", p)
}

// IsDefault reports whether p names one of DefaultHidden as written there;
// isolate.show may only name those.
func IsDefault(p string) bool {
	for _, d := range DefaultHidden {
		if p == d || cleanEntry(p) == d {
			return true
		}
	}
	return false
}

// cleanEntry cleans a path entry, keeping a leading "~/" or "$NAME".
func cleanEntry(p string) string {
	if strings.HasPrefix(p, "$") {
		name, rest, ok := strings.Cut(p, "/")
		if !ok {
			return p
		}
		return name + "/" + strings.TrimPrefix(filepath.Clean("/"+rest), "/")
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return "~/" + strings.TrimPrefix(filepath.Clean("/"+rest), "/")
	}
	return filepath.Clean(p)
}

// HidePaths expands DefaultHidden minus show, plus hide, into absolute clean
// paths. home is the user's home directory. An entry under ~/.config or
// ~/.local/state is also covered under $XDG_CONFIG_HOME or $XDG_STATE_HOME
// when lookup gives an absolute one (the XDG spec ignores relative values),
// since tools disagree on which they honour.
func HidePaths(home string, lookup func(string) (string, bool), hide, show []string) ([]string, error) {
	if !filepath.IsAbs(home) {
		return nil, fmt.Errorf("home directory %q is not absolute", home)
	}
	shown := map[string]bool{}
	for _, s := range show {
		shown[cleanEntry(s)] = true
	}
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	expand := func(e string) {
		if name, rest, ok := strings.Cut(strings.TrimPrefix(e, "$"), "/"); strings.HasPrefix(e, "$") {
			// Only defaults are written this way (ValidPath refuses it).
			if v, set := lookup(name); set && filepath.IsAbs(v) {
				if ok {
					v = filepath.Join(v, rest)
				}
				add(filepath.Clean(v))
			}
			return
		}
		e = cleanEntry(e)
		rest, ok := strings.CutPrefix(e, "~/")
		if !ok {
			add(e)
			return
		}
		add(filepath.Join(home, rest))
		for _, x := range []struct{ dir, env string }{{".config/", "XDG_CONFIG_HOME"}, {".local/state/", "XDG_STATE_HOME"}} {
			if sub, ok := strings.CutPrefix(rest, x.dir); ok {
				if v, ok := lookup(x.env); ok && filepath.IsAbs(v) {
					add(filepath.Join(v, sub))
				}
			}
		}
	}
	for _, d := range DefaultHidden {
		if !shown[d] {
			expand(d)
		}
	}
	for _, h := range hide {
		if err := ValidPath(h); err != nil {
			return nil, err
		}
		expand(h)
	}
	return out, nil
}
