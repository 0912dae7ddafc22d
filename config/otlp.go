package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"gopkg.in/yaml.v3"

	"github.com/agentvault/agentvault/backends"
	"github.com/agentvault/agentvault/vocab"
)

// OTLP is audit.otlp: an OpenTelemetry collector that also receives every
// audit record (docs/audit.md).
type OTLP struct {
	Endpoint string // http(s) URL, checked by Parse
	// Headers go with every export. A value may name agentvault's own
	// environment variables as ${NAME}; HeaderValues replaces them at run
	// time, so the file need not hold the collector's token.
	Headers map[string]string
}

func (p *parser) otlp(n *yaml.Node) (*OTLP, error) {
	const what = "audit.otlp"
	pairs, err := mappingPairs(p.file, n, what)
	if err != nil {
		return nil, err
	}
	o := &OTLP{Headers: map[string]string{}}
	for _, kv := range pairs {
		switch kv.key.Value {
		case "endpoint":
			if o.Endpoint, err = str(p.file, kv.val, what+".endpoint"); err != nil {
				return nil, err
			}
			// The value is not repeated: an ingest key may sit in its query.
			if err := checkOTLPEndpoint(o.Endpoint); err != nil {
				return nil, nodeError(p.file, kv.val, "%s.endpoint: %v", what, err)
			}
		case "headers":
			if isNull(kv.val) {
				continue
			}
			hs, err := mappingPairs(p.file, kv.val, what+".headers")
			if err != nil {
				return nil, err
			}
			for _, h := range hs {
				name := h.key.Value
				// A value may be a token pasted into the file: messages
				// name the header, never its value.
				v, err := str(p.file, h.val, what+".headers."+name)
				if err != nil {
					return nil, err
				}
				if err := checkOTLPHeader(name, v); err != nil {
					return nil, nodeError(p.file, h.key, "%s.headers: %v", what, err)
				}
				o.Headers[name] = v
			}
		default:
			return nil, unknownKey(p.file, kv.key, what, []string{"endpoint", "headers"})
		}
	}
	if o.Endpoint == "" {
		return nil, nodeError(p.file, n, "%s: endpoint is required (the collector's OTLP/HTTP URL, for example http://localhost:4318)", what)
	}
	return o, nil
}

// checkOTLPEndpoint accepts an http or https URL with a host and no
// userinfo or fragment. The exporter posts to it as written when it has a
// path, else to its /v1/logs.
func checkOTLPEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a URL: %v", err)
	}
	switch {
	case u.Scheme == "" || !strings.Contains(s, "://"):
		return errors.New("has no scheme; want an http:// or https:// URL such as http://localhost:4318")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme %q is not supported; want http or https (OTLP/HTTP; gRPC is not supported)", u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return errors.New("has no host; want an http:// or https:// URL such as http://localhost:4318")
	case u.User != nil:
		return errors.New("has a user name or password; put credentials in audit.otlp.headers")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("has a #fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a port number", p)
		}
	}
	return nil
}

// checkOTLPHeader refuses a name that is not an HTTP token or that the
// exporter sets itself, and a value with control characters or a malformed
// ${NAME}.
func checkOTLPHeader(name, v string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("%q is not a valid HTTP header name", name)
	}
	if vocab.ExporterHeader(name) {
		return fmt.Errorf("%q is set by agentvault itself", name)
	}
	if !httpguts.ValidHeaderFieldValue(v) {
		return fmt.Errorf("%s: the value has a control character", name)
	}
	if _, _, err := expandEnv(v, func(string) (string, bool) { return "x", true }); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

// HeaderValues returns the headers with every ${NAME} replaced by
// agentvault's environment variable NAME, and the variables read (sorted):
// they are agentvault's, so the session keeps them from the command. An
// unset or empty variable is an error naming it.
func (o *OTLP) HeaderValues(lookupEnv func(string) (string, bool)) (map[string]string, []string, error) {
	out := make(map[string]string, len(o.Headers))
	seen := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(o.Headers)) {
		v, vars, err := expandEnv(o.Headers[k], lookupEnv)
		if err != nil {
			return nil, nil, fmt.Errorf("audit.otlp.headers.%s: %v", k, err)
		}
		out[k] = v
		for _, name := range vars {
			seen[name] = true
		}
	}
	return out, slices.Sorted(maps.Keys(seen)), nil
}

// expandEnv replaces each ${NAME} in s. Any other "$" is literal, so a
// value without ${ needs no escaping.
func expandEnv(s string, lookupEnv func(string) (string, bool)) (string, []string, error) {
	var b strings.Builder
	var vars []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), vars, nil
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", nil, errors.New("${ without a closing }")
		}
		name := s[i+2 : i+end]
		if !backends.ValidEnvName(name) {
			return "", nil, errors.New("${...} must hold an environment variable name (letters, digits, _)")
		}
		v, ok := lookupEnv(name)
		if !ok || v == "" {
			return "", nil, fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(v)
		vars = append(vars, name)
		s = s[i+end+1:]
	}
}

// HeadersInClear reports whether the exporter would send headers to an
// http:// endpoint. run allows that only under --isolate: in host mode the
// agent shares agentvault's network and could listen on the collector's port
// first (a local collector not running), and only TLS would tell them apart.
func (o *OTLP) HeadersInClear() bool {
	u, err := url.Parse(o.Endpoint)
	return len(o.Headers) > 0 && err == nil && strings.EqualFold(u.Scheme, "http")
}
