package session

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOptions says where to look for the config. Zero values mean the
// process's own: os.LookupEnv, the working directory, the home directory.
type LoadOptions struct {
	Path      string // --config; must exist when set
	LookupEnv func(string) (string, bool)
	Cwd       string
	Home      string
}

// maxConfigSize bounds what Load reads: a config is a few kilobytes.
const maxConfigSize = 4 << 20

func (o LoadOptions) lookup(k string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(k)
	}
	return os.LookupEnv(k)
}

// Find returns the config file to use: o.Path, else $AGENTVAULT_CONFIG (both
// must exist), else ./agentvault.yaml, else $XDG_CONFIG_HOME/agentvault/config.yaml
// (~/.config/agentvault/config.yaml when XDG_CONFIG_HOME is unset), else ""
// for zero-config mode.
func Find(o LoadOptions) (string, error) {
	if o.Path != "" {
		return mustExist(o.rel(o.Path), "--config")
	}
	if p, ok := o.lookup("AGENTVAULT_CONFIG"); ok && p != "" {
		return mustExist(o.rel(p), "$AGENTVAULT_CONFIG")
	}
	candidates := []string{o.rel("agentvault.yaml")}
	if x, ok := o.lookup("XDG_CONFIG_HOME"); ok && filepath.IsAbs(x) {
		// The XDG spec says to ignore a relative XDG_CONFIG_HOME.
		candidates = append(candidates, filepath.Join(x, "agentvault", "config.yaml"))
	} else if home := o.home(); home != "" {
		candidates = append(candidates, filepath.Join(home, ".config", "agentvault", "config.yaml"))
	}
	for _, c := range candidates {
		fi, err := os.Stat(c)
		switch {
		case err == nil && fi.IsDir():
			return "", &ConfigError{File: c, Msg: "is a directory, not a config file"}
		case err == nil:
			return c, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", &ConfigError{File: c, Msg: statReason(err)}
		}
	}
	return "", nil
}

// rel resolves a relative path against o.Cwd when one was given; otherwise
// it stays relative, so messages show what the user typed.
func (o LoadOptions) rel(p string) string {
	if o.Cwd == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(o.Cwd, p)
}

func (o LoadOptions) home() string {
	if o.Home != "" {
		return o.Home
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return h
}

func mustExist(p, source string) (string, error) {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", &ConfigError{File: p, Msg: fmt.Sprintf("config file not found (from %s)", source)}
	case err != nil:
		return "", &ConfigError{File: p, Msg: statReason(err)}
	case fi.IsDir():
		return "", &ConfigError{File: p, Msg: "is a directory, not a config file"}
	}
	return p, nil
}

func statReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Load finds, reads and parses the config, or returns the zero-config
// configuration when there is no file.
func Load(o LoadOptions) (*Config, error) {
	path, err := Find(o)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return ZeroConfig(o.lookup), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: statReason(err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, &ConfigError{File: path, Msg: statReason(err)}
	}
	if len(data) > maxConfigSize {
		return nil, &ConfigError{File: path, Msg: "larger than 4 MiB; not a config file?"}
	}
	return Parse(path, data)
}
