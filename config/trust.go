package config

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A project config (./agentvault.yaml found by discovery) decides where
// secrets go and which commands run, and anyone who can write the working
// directory can write it: a cloned repository, or the agent itself between
// two runs. So it is used only when the user trusted that exact content, the
// way direnv and mise treat .envrc and mise.toml. The record of what was
// trusted lives in the user's state directory, outside every project.

// TrustEntry is one reviewed project config.
type TrustEntry struct {
	Path string            // absolute, the directory's symlinks resolved
	Sum  [sha256.Size]byte // SHA-256 of the content that was reviewed
}

// Short is the hash prefix shown to users.
func (e TrustEntry) Short() string { return hex.EncodeToString(e.Sum[:6]) }

// trustStore says where the trust record is. base is the user's own choice
// ($XDG_STATE_HOME or $HOME) and may be reached through symlinks; the
// directories under it are created 0700 and never followed, and the record
// is replaced, never written in place, so a symlink planted there cannot
// redirect a write.
type trustStore struct {
	base  string
	under []string
}

const trustFileName = "trusted"

// maxTrustRecord bounds what is read: one line per trusted project.
const maxTrustRecord = 16 << 20

func newTrustStore(o LoadOptions) (trustStore, error) {
	if x, ok := o.lookup("XDG_STATE_HOME"); ok && filepath.IsAbs(x) {
		// The XDG spec says to ignore a relative XDG_STATE_HOME.
		return trustStore{base: x, under: []string{"agentvault"}}, nil
	}
	home := o.home()
	if !filepath.IsAbs(home) {
		return trustStore{}, errors.New("no state directory: set HOME or XDG_STATE_HOME to an absolute path")
	}
	return trustStore{base: home, under: []string{".local", "state", "agentvault"}}, nil
}

// TrustFilePath is where the trust record of o's user lives.
func TrustFilePath(o LoadOptions) (string, error) {
	s, err := newTrustStore(o)
	if err != nil {
		return "", err
	}
	return s.path(), nil
}

func (s trustStore) dir() string {
	return filepath.Join(append([]string{s.base}, s.under...)...)
}

func (s trustStore) path() string { return filepath.Join(s.dir(), trustFileName) }

// trustKey names a config in the record: its absolute path with the
// directory's symlinks resolved, so the same project reached through a
// symlinked path is the same entry. The file's own name is kept as is: a
// symlinked ./agentvault.yaml is trusted as that name with that content.
func trustKey(file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// TrustFile reads file once, checks that it is a valid config and records
// that content as trusted. A config that does not parse is not trusted; its
// error is a *ConfigError.
func TrustFile(o LoadOptions, file string) (TrustEntry, error) {
	data, err := readConfig(file)
	if err != nil {
		return TrustEntry{}, err
	}
	if _, err := Parse(file, data); err != nil {
		return TrustEntry{}, err
	}
	return TrustContent(o, file, data)
}

// TrustContent records data as the reviewed content of file. The caller
// must know data is what file holds (init, which just wrote it, or
// TrustFile, which just read it): nothing here reads file itself.
func TrustContent(o LoadOptions, file string, data []byte) (TrustEntry, error) {
	s, err := newTrustStore(o)
	if err != nil {
		return TrustEntry{}, err
	}
	key, err := trustKey(file)
	if err != nil {
		return TrustEntry{}, err
	}
	e := TrustEntry{Path: key, Sum: sha256.Sum256(data)}
	err = s.update(func(old []byte) ([]byte, error) {
		entries, err := parseTrustRecord(old)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", s.path(), err)
		}
		entries[key] = e.Sum
		return formatTrustRecord(entries), nil
	})
	if err != nil {
		return TrustEntry{}, fmt.Errorf("trust record: %w", err)
	}
	return e, nil
}

// checkTrusted returns nil only if the record holds file with data's hash.
// Every refusal is a *ConfigError naming file and the command that trusts it.
func checkTrusted(o LoadOptions, file string, data []byte) error {
	refuse := func(format string, args ...any) error {
		return &ConfigError{File: file, Msg: fmt.Sprintf(format, args...)}
	}
	s, err := newTrustStore(o)
	if err != nil {
		return refuse("project config not used: cannot check it is trusted: %v", err)
	}
	key, err := trustKey(file)
	if err != nil {
		return refuse("project config not used: cannot check it is trusted: %v", err)
	}
	rec, err := s.read()
	if err != nil {
		return refuse("project config not used: cannot read the trust record: %v", err)
	}
	entries, err := parseTrustRecord(rec)
	if err != nil {
		return refuse("project config not used: %s: %v", s.path(), err)
	}
	sum, ok := entries[key]
	switch {
	case ok && sum == sha256.Sum256(data):
		return nil
	case ok:
		return refuse("project config changed since you trusted it; review it, then run: agentvault trust %s", shellQuote(file))
	}
	return refuse("project config is not trusted (a config found in the working directory is used only after you review it); review it, then run: agentvault trust %s", shellQuote(file))
}

const trustRecordHeader = "# Project configs reviewed with `agentvault trust`: SHA-256 of the content, then the file.\n"

// parseTrustRecord reads lines "<sha256 hex> <Go-quoted path>"; blank lines
// and # comments are skipped. A malformed line is an error rather than
// skipped, so a damaged record is noticed, not silently rewritten.
func parseTrustRecord(data []byte) (map[string][sha256.Size]byte, error) {
	entries := map[string][sha256.Size]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxTrustRecord)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sumHex, quoted, _ := strings.Cut(line, " ")
		raw, err := hex.DecodeString(sumHex)
		path, qerr := strconv.Unquote(strings.TrimSpace(quoted))
		if err != nil || len(raw) != sha256.Size || qerr != nil || !filepath.IsAbs(path) {
			return nil, fmt.Errorf("line %d is not \"<sha256> \\\"<absolute path>\\\"\"; fix or delete it", n)
		}
		var sum [sha256.Size]byte
		copy(sum[:], raw)
		entries[path] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return entries, nil
}

// formatTrustRecord writes one line per entry, sorted by path so the file
// diffs cleanly. One path holds one hash: trusting new content replaces it.
func formatTrustRecord(entries map[string][sha256.Size]byte) []byte {
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b bytes.Buffer
	b.WriteString(trustRecordHeader)
	for _, p := range paths {
		sum := entries[p]
		fmt.Fprintf(&b, "%s %s\n", hex.EncodeToString(sum[:]), strconv.Quote(p))
	}
	return b.Bytes()
}

// shellQuote quotes a path for the command a message suggests, so pasting it
// into a shell runs exactly that.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
