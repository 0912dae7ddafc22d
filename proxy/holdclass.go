package proxy

// byteClass is a set of bytes: the alphabet a streaming guard holds back.
type byteClass [256]bool

// The three hold-back classes, from the narrowest. A matcher takes the
// narrowest one that holds every byte of every needle, so an agent that
// watches the guard's timing learns at most which of the three was chosen,
// never a character of a secret.
var (
	// tokenClass covers API keys and every encoding the guards look for:
	// base64 (standard and URL), percent-encoding and JSON \uXXXX escapes.
	// Bytes outside it (space, quote, comma, brace, newline) end a run, so
	// JSON and SSE streams are never delayed past their delimiters.
	tokenClass = func() *byteClass {
		var c byteClass
		for b := 'a'; b <= 'z'; b++ {
			c[b], c[b-'a'+'A'] = true, true
		}
		for b := '0'; b <= '9'; b++ {
			c[b] = true
		}
		for _, b := range []byte(`-_.~+/=%\`) {
			c[b] = true
		}
		return &c
	}()
	// lineClass is for secrets with punctuation, spaces or UTF-8: only a
	// line break ends a run, so line-based streams (SSE, JSON lines) flow.
	lineClass = func() *byteClass {
		var c byteClass
		for i := range c {
			c[i] = i != '\n' && i != '\r'
		}
		return &c
	}()
	// anyClass is for a secret that spans lines: a fixed window is held.
	anyClass = func() *byteClass {
		var c byteClass
		for i := range c {
			c[i] = true
		}
		return &c
	}()
)

// classify picks the hold-back class for a set of needles and the length of
// the longest one.
func classify(needles []needle) (*byteClass, int) {
	class, maxLen := tokenClass, 0
	for _, n := range needles {
		maxLen = max(maxLen, len(n.b))
		for _, b := range n.b {
			switch {
			case b == '\n' || b == '\r':
				class = anyClass
			case !tokenClass[b] && class == tokenClass:
				class = lineClass
			}
		}
	}
	return class, maxLen
}
