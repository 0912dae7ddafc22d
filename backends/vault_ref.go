package backends

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	vault "github.com/hashicorp/vault/api"
)

// vaultRef is a parsed vault:PATH[?version=N][#field] reference.
type vaultRef struct {
	path    string // as written, without leading '/'
	version int    // KV v2 version; 0 = latest
	field   string
}

func parseVaultRef(ref string) (vaultRef, error) {
	base, field := SplitField(ref)
	p, rawQuery, hasQuery := strings.Cut(base, "?")
	r := vaultRef{path: strings.TrimLeft(p, "/"), field: field}
	if r.path == "" {
		return r, errors.New("empty Vault path")
	}
	if !hasQuery {
		return r, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return r, fmt.Errorf("bad query after the Vault path (%s)", r.path)
	}
	for k, vs := range q {
		if k != "version" {
			return r, fmt.Errorf("%s: unknown query parameter %q (known: version)", r.path, k)
		}
		if len(vs) != 1 {
			return r, fmt.Errorf("%s: version given more than once", r.path)
		}
		n, err := strconv.Atoi(vs[0])
		if err != nil || n < 1 {
			return r, fmt.Errorf("%s: version must be a positive integer", r.path)
		}
		r.version = n
	}
	return r, nil
}

// apiPath is the path and query to GET for r under mount m: KV v2 keeps its
// secrets under <mount>/data/, as the vault CLI's "kv get" knows.
func (r vaultRef) apiPath(m mountInfo) (string, url.Values, error) {
	if m.kvVersion != 2 {
		if r.version != 0 {
			return "", nil, fmt.Errorf("%s: ?version= needs a KV version 2 mount, and %s", r.path, m.describe())
		}
		return r.path, nil, nil
	}
	rel, ok := strings.CutPrefix(r.path, m.path)
	if !ok || rel == "" {
		return "", nil, fmt.Errorf("%s names the KV mount %s itself, not a secret in it", r.path, m.path)
	}
	var q url.Values
	if r.version != 0 {
		q = url.Values{"version": {strconv.Itoa(r.version)}}
	}
	return m.path + "data/" + rel, q, nil
}

// mountInfo is what Vault says about the mount holding a path.
type mountInfo struct {
	path      string // with trailing '/', e.g. "secret/"; "" when unknown
	typ       string // engine type, e.g. "kv", "database"
	kvVersion int    // 1 or 2 for KV; 1 also for every other engine
}

func (m mountInfo) describe() string {
	switch {
	case m.path == "":
		return "the mount could not be determined"
	case m.typ == "kv":
		return fmt.Sprintf("mount %s is KV version %d", m.path, m.kvVersion)
	default:
		return fmt.Sprintf("mount %s is a %s engine", m.path, m.typ)
	}
}

// mountCache remembers the mounts already asked about, so that each
// mount costs one preflight request per session.
type mountCache struct {
	mu     sync.Mutex
	mounts []mountInfo
}

func (c *mountCache) lookup(ctx context.Context, client *vault.Client, path string) (mountInfo, error) {
	c.mu.Lock()
	for _, m := range c.mounts {
		if strings.HasPrefix(path, m.path) {
			c.mu.Unlock()
			return m, nil
		}
	}
	c.mu.Unlock()
	m, err := preflight(ctx, client, path)
	if err != nil {
		return m, err
	}
	if m.path != "" {
		c.mu.Lock()
		c.mounts = append(c.mounts, m)
		c.mu.Unlock()
	}
	return m, nil
}

// preflight asks Vault which mount holds path and which KV version it is,
// the request the vault CLI makes before "kv get". Vault answers it for any
// token with some capability under the mount. A 404 means a Vault too old to
// know the endpoint, where everything is KV version 1.
func preflight(ctx context.Context, client *vault.Client, path string) (mountInfo, error) {
	resp, err := client.Logical().ReadRawWithContext(ctx, "sys/internal/ui/mounts/"+path)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return mountInfo{kvVersion: 1}, nil
		}
		return mountInfo{}, err
	}
	s, err := vault.ParseSecret(resp.Body)
	if err != nil {
		return mountInfo{}, fmt.Errorf("reading the mount of %s: %v", path, err)
	}
	if s == nil {
		return mountInfo{}, fmt.Errorf("reading the mount of %s: empty answer", path)
	}
	m := mountInfo{kvVersion: 1}
	m.path, _ = s.Data["path"].(string)
	m.typ, _ = s.Data["type"].(string)
	if opts, ok := s.Data["options"].(map[string]any); ok {
		if v, _ := opts["version"].(string); v == "2" {
			m.kvVersion = 2
		}
	}
	return m, nil
}

// secretData is the key/value part of a read: KV v2 wraps it in "data"
// next to "metadata".
func secretData(r vaultRef, m mountInfo, s *vault.Secret) (map[string]any, error) {
	if s == nil {
		hint := ""
		if m.kvVersion == 2 && strings.HasPrefix(strings.TrimPrefix(r.path, m.path), "data/") {
			hint = fmt.Sprintf(" (%s is KV version 2: write the path without data/, as for vault kv get)", m.path)
		}
		if r.version != 0 {
			return nil, fmt.Errorf("vault reading %s: version %d not found%s", r.path, r.version, hint)
		}
		return nil, fmt.Errorf("vault reading %s: no secret at this path%s", r.path, hint)
	}
	if m.kvVersion != 2 {
		return s.Data, nil
	}
	data, ok := s.Data["data"].(map[string]any)
	if !ok {
		// A deleted or destroyed version answers 404 with metadata only.
		return nil, fmt.Errorf("vault reading %s: the secret version is deleted or destroyed", r.path)
	}
	return data, nil
}

// selectValue returns the field r names. Without a field, a secret with one
// key gives that key's value; a leased secret with several (a database or AWS
// login) gives all of them as a JSON object, which aws-sigv4 can read; a KV
// secret with several keys is an error listing the key names.
func selectValue(r vaultRef, data map[string]any, leased bool) (string, error) {
	if r.field != "" {
		v, ok := data[r.field]
		if !ok {
			return "", fmt.Errorf("vault reading %s: field %q not found (keys: %s)", r.path, r.field, vaultKeyList(data))
		}
		s, err := vaultValueString(v)
		if err != nil {
			return "", fmt.Errorf("vault reading %s: field %q %v", r.path, r.field, err)
		}
		return s, nil
	}
	switch {
	case len(data) == 0:
		return "", fmt.Errorf("vault reading %s: the secret has no data", r.path)
	case len(data) == 1:
		for k, v := range data {
			s, err := vaultValueString(v)
			if err != nil {
				return "", fmt.Errorf("vault reading %s: field %q %v", r.path, k, err)
			}
			return s, nil
		}
	case !leased:
		return "", fmt.Errorf("vault reading %s: the secret has several keys (%s); name one as %s#KEY", r.path, vaultKeyList(data), r.path)
	}
	obj := make(map[string]any, len(data))
	for k, v := range data {
		if v != nil {
			obj[k] = v
		}
	}
	js, err := json.Marshal(obj)
	if err != nil {
		return "", fmt.Errorf("vault reading %s: cannot encode the secret's data as JSON", r.path)
	}
	return string(js), nil
}

// valueString spells a JSON value read by the api client (which decodes
// numbers as json.Number, keeping a long numeric PIN intact).
func vaultValueString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", errors.New("is null")
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	default:
		// Objects and arrays (a service account key stored as a map) are
		// handed over as JSON.
		js, err := json.Marshal(x)
		if err != nil {
			return "", errors.New("cannot be encoded as JSON")
		}
		return string(js), nil
	}
}

func vaultKeyList(data map[string]any) string {
	if len(data) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, strconv.Quote(k))
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// vaultOneLine squeezes text into one bounded line for an error message.
func vaultOneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > limit {
		cut := limit
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func vaultStatusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "unexpected status"
}

// unwrapURLError drops net/http's `Get "URL":` prefix: the message already
// names the path and the address.
func vaultUnwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
