package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/agentvault/agentvault/broker"
	"github.com/agentvault/agentvault/config"
	"github.com/agentvault/agentvault/proxy"
)

// login is one brokered subscription login (config logins:): the broker
// holding the real tokens, and the session copy of the CLI's directory.
type login struct {
	name   string // the credential name in records, "<agent>-login"
	format *broker.Format
	store  string // the user's own token store
	b      *broker.Broker
	dir    string // the session copy of the CLI's directory
}

// autoLogins brokers, in zero-config mode, the subscription login of the
// agent CLI being run (`agentvault run -- claude`, `-- codex`: the command's
// base name is the login's name) when its token store exists, so the
// session protects it without a config file. Another command run that way
// (a shell that starts the CLI later) gets no brokering: the user's store
// is then the CLI's, as without agentvault.
func (r *runner) autoLogins() {
	if !r.cfg.ZeroConfig || len(r.cfg.Logins) > 0 || len(r.opts.Argv) == 0 {
		return
	}
	cmd := filepath.Base(r.opts.Argv[0])
	for _, f := range broker.Formats {
		if f.Name != cmd {
			continue
		}
		// Only a store at an absolute path: with HOME unset the usual
		// path would be relative, and a repository could plant one in the
		// working directory (an account of its choosing).
		store := r.userStore(f)
		if st, err := os.Lstat(store); err != nil || !filepath.IsAbs(store) || !st.Mode().IsRegular() {
			continue
		}
		r.cfg.Logins = append(r.cfg.Logins, f.Name)
		if r.autoLogin == nil {
			r.autoLogin = map[string]bool{}
		}
		r.autoLogin[f.Name] = true
	}
}

// openLogins reads the real token store of every agent under logins:. It
// runs before the proxy's rules are built, which bind the logins' hosts.
func (r *runner) openLogins() error {
	for _, name := range r.cfg.Logins {
		f, ok := broker.Lookup(name)
		if !ok {
			return runErr(FailConfig, "logins: unknown agent %q", name)
		}
		l := &login{name: name + "-login", format: f, store: r.userStore(f)}
		if !filepath.IsAbs(l.store) {
			// HOME unknown: a relative path would read a store the
			// working directory (a repository) holds.
			return runErr(FailConfig, "logins: %s: the home directory is unknown (set HOME), so the token store cannot be found", name)
		}
		ph := func(real string) string { return Placeholder(config.Credential{Name: l.name}, real) }
		b, err := broker.Open(f, l.store, ph)
		if err != nil && r.autoLogin[name] {
			r.notes = append(r.notes, fmt.Sprintf("the %s subscription login is not brokered: %v", name, err))
			continue
		}
		if err != nil {
			return runErr(FailConfig, "logins: %s: %w", name, err)
		}
		l.b = b
		if r.sandbox == nil {
			// Under --isolate the store is hidden by a mount that the
			// write's rename would detach (see WriteOnRefresh); the
			// sandbox ends with the command, before the exit write-back.
			b.WriteOnRefresh()
		}
		for _, s := range b.Secrets() {
			r.redactor.AddSecret(l.name, s)
		}
		for _, p := range b.Placeholders() {
			r.redactor.AddPlaceholder(l.name, p)
		}
		r.logins = append(r.logins, l)
	}
	return nil
}

// userDir is the CLI's directory as the user's environment sets it.
func (r *runner) userDir(f *broker.Format) string {
	if v, ok := r.opts.LookupEnv(f.DirEnv); ok && v != "" {
		return r.abs(v)
	}
	return filepath.Join(r.opts.Home, f.HomeDir)
}

// userStore is the user's token store. Claude Code keeps it in
// CLAUDE_SECURESTORAGE_CONFIG_DIR when that is set.
func (r *runner) userStore(f *broker.Format) string {
	if f == broker.Claude {
		if v, ok := r.opts.LookupEnv("CLAUDE_SECURESTORAGE_CONFIG_DIR"); ok && v != "" {
			return filepath.Join(r.abs(v), f.StoreFile)
		}
	}
	return filepath.Join(r.userDir(f), f.StoreFile)
}

// abs resolves a directory a variable names against the working
// directory, as the CLI started there would.
func (r *runner) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(r.opts.Cwd, p)
}

// loginStores are the users' real token stores of the logins, hidden under
// --isolate so the agent sees only the session's copies.
func (r *runner) loginStores() []string {
	var out []string
	for _, name := range r.cfg.Logins {
		if f, ok := broker.Lookup(name); ok {
			out = append(out, r.userStore(f))
		}
	}
	return out
}

// writeLogins makes, in the session directory, a copy of each CLI's
// directory: the brokered token store as a regular file (the CLIs refuse a
// symlinked one), and a symlink to each other entry of the user's
// directory, so settings and history stay the user's. It returns the
// variables that point the CLIs at the copies.
func (r *runner) writeLogins() (map[string]string, error) {
	env := map[string]string{}
	for _, l := range r.logins {
		l.dir = filepath.Join(r.dir.Path(), l.name)
		if err := os.Mkdir(l.dir, 0o700); err != nil {
			return nil, runErr(FailInternal, "logins: %w", err)
		}
		src := r.userDir(l.format)
		entries, err := os.ReadDir(src)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, runErr(FailInternal, "logins: %w", err)
		}
		for _, e := range entries {
			if e.Name() == l.format.StoreFile {
				continue
			}
			if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(l.dir, e.Name())); err != nil {
				return nil, runErr(FailInternal, "logins: %w", err)
			}
		}
		if _, set := r.opts.LookupEnv(l.format.DirEnv); !set {
			for _, h := range l.format.HomeFiles {
				home := filepath.Join(r.opts.Home, h)
				if _, err := os.Lstat(filepath.Join(l.dir, h)); err == nil {
					continue
				}
				if _, err := os.Stat(home); err == nil {
					if err := os.Symlink(home, filepath.Join(l.dir, h)); err != nil {
						return nil, runErr(FailInternal, "logins: %w", err)
					}
					r.warnHomeSecrets(l, home)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(l.dir, l.format.StoreFile), l.b.Copy(), 0o600); err != nil {
			return nil, runErr(FailInternal, "logins: %w", err)
		}
		env[l.format.DirEnv] = l.dir
		if l.format == broker.Claude {
			env["CLAUDE_SECURESTORAGE_CONFIG_DIR"] = l.dir
		}
	}
	return env, nil
}

// warnHomeSecrets warns of a real credential in a file the session copy
// links as it is (Claude Code's primaryApiKey in ~/.claude.json): the agent
// can read it, and the CLI may use it instead of the brokered login. The
// warning names the file and the key, never the value.
func (r *runner) warnHomeSecrets(l *login, path string) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) > 16<<20 {
		return
	}
	var top map[string]any
	if json.Unmarshal(data, &top) != nil {
		return
	}
	for _, k := range l.format.HomeSecretKeys {
		if v, ok := top[k].(string); ok && v != "" {
			r.redactor.AddSecret(l.name+" "+k, v)
			r.warn(fmt.Sprintf("login %s: %s holds a real API key (%s) that the agent can read through the session's copy, and the CLI may use it instead of the brokered login; remove it (log out of the Console login) or run without logins", l.name, path, k))
		}
	}
}

// loginCredentials bind each login's API hosts and token endpoint, so the
// proxy decrypts them and the session CA covers them; the placeholders
// themselves are swapped by the proxy's token brokers. Secret is the
// current access token, which the leak guard keeps off every other host.
func (r *runner) loginCredentials() []*proxy.Credential {
	var out []*proxy.Credential
	for _, l := range r.logins {
		out = append(out, &proxy.Credential{
			Name:   l.name,
			Hosts:  loginHosts(l.format),
			Secret: l.b.CurrentAccess,
		})
	}
	return out
}

func loginHosts(f *broker.Format) []string {
	hosts := append([]string(nil), f.APIHosts...)
	if u, err := urlHost(f.TokenURL); err == nil {
		hosts = append(hosts, u)
	}
	return hosts
}

// tokenBrokers are the proxy's side of the logins.
func (r *runner) tokenBrokers() []*proxy.TokenBroker {
	var out []*proxy.TokenBroker
	for _, l := range r.logins {
		b := l.b
		out = append(out, &proxy.TokenBroker{
			Name:     l.name,
			Hosts:    l.format.APIHosts,
			TokenURL: l.format.TokenURL,
			Access: func() ([]string, []string) {
				pairs := b.Access()
				phs, reals := make([]string, len(pairs)), make([]string, len(pairs))
				for i, p := range pairs {
					phs[i], reals[i] = p.Placeholder, p.Real
				}
				return phs, reals
			},
			Secrets: b.Secrets,
			Rewrite: func(ct string, body []byte) ([]byte, func(int, []byte) ([]byte, error), error) {
				out, refresh, err := b.RewriteRequest(ct, body)
				if err != nil {
					return nil, nil, err
				}
				return out, func(status int, body []byte) ([]byte, error) {
					res, err := refresh.Response(status, body)
					for _, p := range b.Placeholders() {
						r.redactor.AddPlaceholder(l.name, p)
					}
					return res, err
				}, nil
			},
		})
	}
	return out
}

// writeBackLogins writes refreshed real tokens to the users' stores once
// the command has exited.
func (r *runner) writeBackLogins() {
	for _, l := range r.logins {
		wrote, err := l.b.WriteBack()
		switch {
		case err != nil:
			r.warn(fmt.Sprintf("login %s: refreshed tokens not written back to %s: %v", l.name, l.store, err))
		case wrote:
			r.notes = append(r.notes, fmt.Sprintf("login %s: refreshed tokens written back to %s", l.name, l.store))
		}
	}
}

// urlHost is a URL's host, with its port unless that is 443.
func urlHost(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Port() == "443" {
		return u.Hostname(), nil
	}
	return u.Host, nil
}
