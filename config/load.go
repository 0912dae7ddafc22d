package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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
	path, _, err := find(o)
	return path, err
}

// find is Find that also says whether the file is a project config: one
// found in the working directory rather than named by the user, which Load
// uses only when it is trusted (trust.go).
func find(o LoadOptions) (path string, project bool, err error) {
	if o.Path != "" {
		path, err := mustExist(o.rel(o.Path), "--config")
		return path, false, err
	}
	if p, ok := o.lookup("AGENTVAULT_CONFIG"); ok && p != "" {
		path, err := mustExist(o.rel(p), "$AGENTVAULT_CONFIG")
		return path, false, err
	}
	candidates := []string{o.rel(projectConfigName)}
	if x, ok := o.lookup("XDG_CONFIG_HOME"); ok && filepath.IsAbs(x) {
		// The XDG spec says to ignore a relative XDG_CONFIG_HOME.
		candidates = append(candidates, filepath.Join(x, "agentvault", "config.yaml"))
	} else if home := o.home(); home != "" {
		candidates = append(candidates, filepath.Join(home, ".config", "agentvault", "config.yaml"))
	}
	for i, c := range candidates {
		fi, err := os.Stat(c)
		switch {
		case err == nil && fi.IsDir():
			return "", false, &ConfigError{File: c, Msg: "is a directory, not a config file"}
		case err == nil:
			return c, i == 0, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", false, &ConfigError{File: c, Msg: statReason(err)}
		}
	}
	return "", false, nil
}

// projectConfigName is the config discovery finds in the working directory.
const projectConfigName = "agentvault.yaml"

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
// configuration when there is no file. A project config must be trusted
// (TrustFile) with exactly the content read here; otherwise Load fails with
// a *ConfigError before anything in the file is looked at, so no backend it
// names is opened and no command it names runs.
func Load(o LoadOptions) (*Config, error) {
	path, project, err := find(o)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return ZeroConfig(o.lookup), nil
	}
	data, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	// The bytes checked are the bytes parsed: the file is read once, so it
	// cannot change between the check and the parse.
	if project {
		if err := checkTrusted(o, path, data); err != nil {
			return nil, err
		}
	}
	return Parse(path, data)
}

// readConfig reads a config file once. It must be a regular file (reached
// through symlinks or not): a FIFO planted at ./agentvault.yaml would
// otherwise block the open until someone writes to it.
func readConfig(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: statReason(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &ConfigError{File: path, Msg: statReason(err)}
	}
	switch {
	case fi.IsDir():
		return nil, &ConfigError{File: path, Msg: "is a directory, not a config file"}
	case !fi.Mode().IsRegular():
		return nil, &ConfigError{File: path, Msg: "is not a regular file, not a config file"}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, &ConfigError{File: path, Msg: statReason(err)}
	}
	if len(data) > maxConfigSize {
		return nil, &ConfigError{File: path, Msg: "larger than 4 MiB; not a config file?"}
	}
	return data, nil
}
