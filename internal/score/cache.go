package score

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// Cache compiles each ScoringPolicy generation once and shares the
// result between the ScoringPolicy and Incident controllers.
type Cache struct {
	mu      sync.Mutex
	entries map[types.NamespacedName]compiledPolicy
}

type compiledPolicy struct {
	uid        types.UID
	generation int64
	policy     *Policy
	err        error
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{entries: map[types.NamespacedName]compiledPolicy{}}
}

// Get returns the compiled form of the policy's current generation,
// compiling it when the generation is new.
func (c *Cache) Get(p *fidov1.ScoringPolicy) (*Policy, error) {
	key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && e.uid == p.UID && e.generation == p.Generation {
		return e.policy, e.err
	}
	compiled, err := Compile(p)
	c.mu.Lock()
	c.entries[key] = compiledPolicy{uid: p.UID, generation: p.Generation, policy: compiled, err: err}
	c.mu.Unlock()
	return compiled, err
}

// Forget drops a deleted policy.
func (c *Cache) Forget(key types.NamespacedName) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}
