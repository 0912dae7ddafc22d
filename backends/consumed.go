package backends

import (
	"sort"
	"sync"
)

// consumedEnv records the environment variables a backend has read, which
// the launcher removes from the child. It is safe for concurrent use; the
// zero value is ready.
type consumedEnv struct {
	mu    sync.Mutex
	names map[string]bool
}

func (c *consumedEnv) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names == nil {
		c.names = map[string]bool{}
	}
	c.names[name] = true
}

// ConsumedEnv implements Backend.ConsumedEnv: the names, sorted.
func (c *consumedEnv) ConsumedEnv() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.names))
	for n := range c.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
