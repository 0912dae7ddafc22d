package isolate

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// SeatbeltProfile is the macOS sandbox (Seatbelt) profile an isolated command
// runs under, through sandbox-exec. It is generated on every OS so that its
// text can be tested where Linux runs the tests; only sandbox_darwin.go runs
// it.
//
// No path ever enters Text: the hidden paths travel as parameters (-D
// KEY=VALUE on sandbox-exec's command line) and the profile reads them with
// (param "KEY"). A path comes from $HOME, $XDG_*_HOME, the config or a
// directory someone planted, so it may hold quotes, backslashes, parentheses
// or newlines; as a parameter it is a plain string that SBPL never parses,
// whatever bytes it holds, and cannot add a rule.
type SeatbeltProfile struct {
	Text   string
	Params []string // KEY=VALUE, in the order the profile names them
}

// Seatbelt rules are evaluated last match first: each section denies broadly,
// then allows back what the agent keeps.
const seatbeltHead = `(version 1)
; Everything the user can do, except what is denied below.
(allow default)

; Network: nothing but the session proxy on loopback. Seatbelt can name a
; loopback port but not who listens on it, so servers the agent starts itself
; accept connections, while connecting to them needs their port in the list.
(deny network*)
(allow network-bind (local ip "*:*"))
(allow network-inbound (local ip "localhost:*"))
`

const seatbeltTail = `
; No name resolution through the system resolver (mDNSResponder), which
; would send the names outside; the proxy resolves the names it dials.
(deny mach-lookup (global-name "com.apple.dnssd.service"))

; Processes: the agent sees, signals and inspects only its own sandbox, not
; agentvault, exec helpers or the user's other processes.
(deny process-info*)
(allow process-info* (target same-sandbox))
(deny signal)
(allow signal (target same-sandbox))
(deny mach-priv-task-port)
(allow mach-priv-task-port (target same-sandbox))
(deny mach-task-name)
(allow mach-task-name (target same-sandbox))
`

// NewSeatbeltProfile builds the profile: network only to 127.0.0.1 on ports
// (the proxy's, and any loopback port the agent's own servers use), no
// reading or writing under hidden (absolute, already resolved: see
// ResolveHidden), no process information or signals outside the sandbox.
func NewSeatbeltProfile(ports []int, hidden []string) (SeatbeltProfile, error) {
	var b strings.Builder
	b.WriteString(seatbeltHead)
	seen := map[int]bool{}
	for _, p := range ports {
		if p < 1 || p > 65535 {
			return SeatbeltProfile{}, fmt.Errorf("isolate: port %d out of range", p)
		}
		if !seen[p] {
			seen[p] = true
			// An integer: nothing of the caller's reaches the text as a string.
			fmt.Fprintf(&b, "(allow network-outbound (remote ip \"localhost:%d\"))\n", p)
		}
	}
	var params []string
	if len(hidden) > 0 {
		b.WriteString("\n; Hidden credential stores: neither read nor written, nor listed.\n")
	}
	for i, h := range hidden {
		if !filepath.IsAbs(h) || filepath.Clean(h) != h {
			return SeatbeltProfile{}, fmt.Errorf("isolate: hidden path %q is not absolute and clean", h)
		}
		// sandbox-exec gets it in argv, which cannot hold a NUL.
		if strings.ContainsRune(h, 0) {
			return SeatbeltProfile{}, errors.New("isolate: hidden path contains a NUL byte")
		}
		key := fmt.Sprintf("HIDE_%d", i)
		fmt.Fprintf(&b, "(deny file-read* file-write* (subpath (param %q)))\n", key)
		params = append(params, key+"="+h)
	}
	b.WriteString(seatbeltTail)
	return SeatbeltProfile{Text: b.String(), Params: params}, nil
}

// Args is the argument vector of sandbox-exec running path with argv under
// the profile. argv[0] is lost: sandbox-exec runs path with path as its name.
func (p SeatbeltProfile) Args(path string, argv []string) []string {
	args := []string{"sandbox-exec", "-p", p.Text}
	for _, kv := range p.Params {
		args = append(args, "-D", kv)
	}
	args = append(args, "--", path)
	if len(argv) > 1 {
		args = append(args, argv[1:]...)
	}
	return args
}

// ResolveHidden turns hide paths into what Seatbelt compares: it matches the
// real path of the file opened, after every symbolic link (on macOS even /tmp
// and /var are links into /private), so a rule on a link's own path would
// never apply. Each path is kept as given (cleaned) and, when it differs, as
// resolved; a path that does not exist yet is resolved through its deepest
// existing ancestor and stays denied, so the agent cannot create it either.
// evalSymlinks is filepath.EvalSymlinks outside tests.
func ResolveHidden(paths []string, evalSymlinks func(string) (string, error)) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			continue
		}
		p = filepath.Clean(p)
		add(p)
		if r, ok := resolveExisting(p, evalSymlinks); ok {
			add(r)
		}
	}
	return out
}

// resolveExisting resolves p's symbolic links, or its deepest existing
// ancestor's when p does not exist, appending the rest unresolved.
func resolveExisting(p string, evalSymlinks func(string) (string, error)) (string, bool) {
	var rest []string
	// Bounded by the path's depth: each round moves one element up.
	for dir := p; ; dir = filepath.Dir(dir) {
		r, err := evalSymlinks(dir)
		if err == nil {
			return filepath.Join(append([]string{r}, rest...)...), true
		}
		if !errors.Is(err, fs.ErrNotExist) || dir == filepath.Dir(dir) {
			return "", false
		}
		rest = append([]string{filepath.Base(dir)}, rest...)
	}
}
