package proxy

import (
	"slices"
	"sync"
)

// matcherCache keeps the matchers the guards build for every request: the
// reflection guard's over every credential, and the leak guard's over the
// credentials not bound to a target. A matcher depends only on which
// credentials it covers (fixed per target: the policy never changes) and on
// their current values, so a cached one is used while every value is the
// one it was built from, and rebuilt the first time one differs (a
// rotation). Each lookup still asks every credential for its value.
type matcherCache struct {
	mu      sync.Mutex
	entries map[matcherKey]*cachedMatcher
}

// matcherKey names a set of credentials: the unbound ones of host:port for
// the leak guard (leak true), every credential for the reflection guard.
type matcherKey struct {
	leak bool
	// lower: the matcher of case-folded channels (host names, header
	// field names), made of lower-cased forms.
	lower bool
	host  string
	port  int
	// held counts the brokered logins' past values the reflection
	// matcher covers: they only grow, so a new count is a new matcher.
	held int
}

type cachedMatcher struct {
	creds  []*credential
	values []string // the values m was built from, one per credential
	m      *matcher
}

// maxCachedMatchers bounds the cache: one entry per target the agent
// reaches, dropped wholesale when full.
const maxCachedMatchers = 1024

// reflectMatcher is newMatcher over p.policy.creds and every value a
// brokered login has held (reflectForms), cached. A login's credential
// knows only its current access token, and an API may echo one a refresh
// replaced while the request that carried it was in flight.
func (p *Proxy) reflectMatcher() *matcher { return p.reflectMatchers(false).values }

// fieldMatchers are the reflection guard's matchers for a header or
// trailer: over values, and (lowered forms) over field names lower-cased.
type fieldMatchers struct{ values, names *matcher }

// reflectMatchers returns reflectMatcher and, when names is set, its
// counterpart for field names, over the same credentials.
func (p *Proxy) reflectMatchers(names bool) fieldMatchers {
	var held []*credential
	for _, tb := range p.TokenBrokers {
		held = append(held, tb.heldCreds()...)
	}
	creds := func() []*credential { return append(slices.Clip(p.policy.creds), held...) }
	fm := fieldMatchers{values: p.cachedMatcher(matcherKey{held: len(held)}, creds, reflectForms)}
	if names {
		fm.names = p.cachedMatcher(matcherKey{lower: true, held: len(held)}, creds, lowered(reflectForms))
	}
	return fm
}

// leakNameMatcher is leakMatcher for case-folded channels (the target's
// host name, header field names): lowered forms, matched against the
// channel lower-cased, cached.
func (p *Proxy) leakNameMatcher(host string, port int) *matcher {
	return p.cachedMatcher(matcherKey{leak: true, lower: true, host: host, port: port},
		func() []*credential { return p.unboundCreds(host, port) }, lowered(leakForms))
}

// leakMatcher is newMatcher(p.unboundCreds(host, port), leakForms), cached.
func (p *Proxy) leakMatcher(host string, port int) *matcher {
	return p.cachedMatcher(matcherKey{leak: true, host: host, port: port},
		func() []*credential { return p.unboundCreds(host, port) }, leakForms)
}

func (p *Proxy) cachedMatcher(key matcherKey, creds func() []*credential, forms func(string) [][]byte) *matcher {
	c := &p.matchers
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()
	if e == nil {
		e = &cachedMatcher{creds: creds()}
	} else {
		same := true
		for i, cr := range e.creds {
			if cr.current() != e.values[i] {
				same = false
				break
			}
		}
		if same {
			return e.m
		}
	}
	// Built from exactly the values it is kept for: a value that changes
	// while it is built makes the next lookup build again.
	values := make([]string, len(e.creds))
	for i, cr := range e.creds {
		values[i] = cr.current()
	}
	fresh := &cachedMatcher{creds: e.creds, values: values, m: newMatcherOf(e.creds, values, forms)}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= maxCachedMatchers {
		c.entries = map[matcherKey]*cachedMatcher{}
	}
	c.entries[key] = fresh
	c.mu.Unlock()
	return fresh.m
}
