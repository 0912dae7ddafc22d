package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrNoLogin: the store holds no subscription login (no access and
// refresh token where the format keeps them), for example an API-key-only
// codex store.
var ErrNoLogin = errors.New("the token store holds no subscription login")

// ErrConflict: the user's store changed since the session read it, so
// something outside the session logged in or refreshed; write-back leaves
// it alone rather than overwrite newer tokens with older ones.
var ErrConflict = errors.New("the token store changed outside the session")

// Broker holds one CLI login for a session: the real tokens, the
// placeholders the agent sees instead, and the refreshes made through the
// proxy. Its methods are safe for concurrent use.
type Broker struct {
	format      *Format
	path        string
	placeholder func(real string) string
	indent      bool

	mu sync.Mutex
	// orig is the store as read; copy the brokered store handed out.
	orig map[string]any
	copy []byte
	// origLogin is the login's tokens as read, to detect a change at
	// write-back.
	origLogin login
	// account is the account the store's login belongs to, "" if the
	// store does not say.
	account string
	// cur is the login's current real tokens.
	cur            login
	refreshed      bool
	writeOnRefresh bool // see WriteOnRefresh
	meta           refreshMeta
	// toReal maps every placeholder handed out to its real value; toPh is
	// the reverse, so a real value seen again keeps its placeholder.
	toReal, toPh map[string]string
	// secrets is every real value ever held, for the leak checks.
	secrets []string
}

// login is a CLI login's tokens; id may be empty.
type login struct{ access, refresh, id string }

// Open reads format's store at path (a regular file owned by the user,
// never a symlink) and prepares the brokered copy. placeholder makes the
// value the agent sees for a real one, in the real one's format; it must
// never return its argument.
func Open(format *Format, path string, placeholder func(real string) string) (*Broker, error) {
	data, _, err := readStore(path)
	if err != nil {
		return nil, err
	}
	store, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("token store %s: %w", path, err)
	}
	b := &Broker{
		format: format, path: path, placeholder: placeholder,
		indent: bytes.Contains(data, []byte("\n ")),
		orig:   store, toReal: map[string]string{}, toPh: map[string]string{},
	}
	access, _ := getPath(store, format.access).(string)
	refresh, _ := getPath(store, format.refresh).(string)
	if access == "" || refresh == "" {
		return nil, fmt.Errorf("%s: %w", path, ErrNoLogin)
	}
	b.origLogin = login{access: access, refresh: refresh}
	if format.id != nil {
		b.origLogin.id, _ = getPath(store, format.id).(string)
	}
	b.cur = b.origLogin
	if format.storeAccount != nil {
		b.account = format.storeAccount(store)
	}
	cp, err := b.brokered(store)
	if err != nil {
		return nil, fmt.Errorf("token store %s: %w", path, err)
	}
	b.copy = cp
	return b, nil
}

// Format returns the broker's format.
func (b *Broker) Format() *Format { return b.format }

// Copy returns the brokered store: the user's store with every credential
// replaced by its placeholder and the format's unsafe keys left out.
func (b *Broker) Copy() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.copy)
}

// Real returns the real value behind a placeholder the broker handed out.
func (b *Broker) Real(placeholder string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.toReal[placeholder]
	return r, ok
}

// Pair is a placeholder and the real value it stands for.
type Pair struct{ Placeholder, Real string }

// Access returns the current access token's placeholder with its real
// value: what the proxy swaps on the API hosts. An older access token
// stays valid at the API until it expires, but its placeholder is no
// longer swapped once a refresh replaced it: the proxy's reflection guard
// knows only the current token (the credential's Secret), so an old one
// echoed back by an API host would reach the agent unmasked. A client
// that still sends an old placeholder gets the API's 401 and refreshes or
// rereads its store, as after any expiry.
func (b *Broker) Access() []Pair {
	b.mu.Lock()
	defer b.mu.Unlock()
	ph, ok := b.toPh[b.cur.access]
	if !ok {
		// A refresh answer refused before its tokens got placeholders.
		return nil
	}
	return []Pair{{ph, b.cur.access}}
}

// CurrentAccess returns the login's current real access token.
func (b *Broker) CurrentAccess() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cur.access
}

// Secrets returns every real value the broker has held (the store's
// credentials, and every token a refresh brought), for redaction.
func (b *Broker) Secrets() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.secrets)
}

// Placeholders returns every placeholder the broker handed out.
func (b *Broker) Placeholders() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.toReal))
	for ph := range b.toReal {
		out = append(out, ph)
	}
	return out
}

// placeholderFor returns real's placeholder, making one the first time.
// Caller holds mu.
func (b *Broker) placeholderFor(real string) (string, error) {
	if ph, ok := b.toPh[real]; ok {
		return ph, nil
	}
	ph := b.placeholder(real)
	if ph == "" || ph == real {
		return "", errors.New("the placeholder maker returned the real value or nothing")
	}
	if _, taken := b.toReal[ph]; taken {
		return "", errors.New("the placeholder maker returned a placeholder already in use")
	}
	b.toPh[real] = ph
	b.toReal[ph] = real
	b.addSecret(real)
	return ph, nil
}

func (b *Broker) addSecret(real string) {
	if !slices.Contains(b.secrets, real) {
		b.secrets = append(b.secrets, real)
	}
}

// brokered returns store with every credential replaced and unsafe keys
// dropped, refusing the result if a real value still shows through.
// Caller holds mu or owns b.
func (b *Broker) brokered(store map[string]any) ([]byte, error) {
	cp, ok := deepCopy(store).(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	for _, k := range b.format.dropKeys {
		delete(cp, k)
	}
	if err := b.replaceSecrets(cp); err != nil {
		return nil, err
	}
	if treeLeaks(cp, b.secrets) {
		return nil, errors.New("a real token shows through elsewhere in the store (inside another field or a token's claims); agentvault will not hand out a copy")
	}
	return b.encode(cp)
}

// replaceSecrets swaps, in place, every string under one of the format's
// secret keys for its placeholder.
func (b *Broker) replaceSecrets(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && s != "" && slices.Contains(b.format.secretKeys, k) {
				ph, err := b.placeholderFor(s)
				if err != nil {
					return err
				}
				v[k] = ph
				continue
			}
			if err := b.replaceSecrets(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := b.replaceSecrets(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *Broker) encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if b.indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteOnRefresh makes every refresh write the new real tokens to the
// user's store at once, as WriteBack would, instead of only at exit: the
// endpoint may have rotated the refresh token the store holds, so an
// agentvault killed before its end (SIGKILL, a CI timeout, a crash) would
// otherwise leave a store that no longer logs in. Not for a store hidden
// from a sandbox by a mount on the file: the store is replaced by a
// rename, which detaches that mount in every namespace and would show the
// new tokens to the agent.
func (b *Broker) WriteOnRefresh() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writeOnRefresh = true
}

// Refreshed reports whether a refresh went through the broker.
func (b *Broker) Refreshed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refreshed
}

// WriteBack writes the current real tokens into the user's store if a
// refresh replaced them, and reports whether it wrote. It reads the store
// afresh and changes only the login's tokens and their expiry metadata, so
// every other field, including any the CLI added meanwhile, is kept; the
// session's copy, which the agent could have edited, is never read. A
// store whose login changed since Open is left alone (ErrConflict).
func (b *Broker) WriteBack() (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.refreshed {
		return false, nil
	}
	return b.writeBackLocked()
}

// writeBackLocked is WriteBack with b.mu held. After a write, the store's
// login is the current one: a later write-back checks for changes made
// outside the session against it.
func (b *Broker) writeBackLocked() (bool, error) {
	data, _, err := readStore(b.path)
	if err != nil {
		return false, err
	}
	store, err := decodeObject(data)
	if err != nil {
		return false, fmt.Errorf("token store %s: %w", b.path, err)
	}
	access, _ := getPath(store, b.format.access).(string)
	refresh, _ := getPath(store, b.format.refresh).(string)
	if access != b.origLogin.access || refresh != b.origLogin.refresh {
		return false, fmt.Errorf("%s: %w", b.path, ErrConflict)
	}
	setPath(store, b.format.access, b.cur.access)
	setPath(store, b.format.refresh, b.cur.refresh)
	if b.format.id != nil && b.cur.id != "" {
		setPath(store, b.format.id, b.cur.id)
	}
	if b.format.stamp != nil {
		b.format.stamp(store, b.meta)
	}
	out, err := b.encode(store)
	if err != nil {
		return false, err
	}
	if err := writeStore(b.path, out); err != nil {
		return false, err
	}
	b.origLogin = b.cur
	return true, nil
}

// decodeObject decodes a JSON object, keeping numbers as written.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not JSON: data after the object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

func getPath(m map[string]any, path []string) any {
	var v any = m
	for _, k := range path {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

func setPath(m map[string]any, path []string, val any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = val
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// now is the clock refreshes are stamped with; tests replace it.
var now = time.Now
