package tiers

import (
	"sync/atomic"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// Resolver hands out the configuration in force. It is safe for concurrent
// use; For costs an atomic load and a map lookup.
type Resolver struct {
	cur atomic.Pointer[Config]
	gen atomic.Uint64
}

// NewResolver returns a resolver serving c (Default() when nil).
func NewResolver(c *Config) *Resolver {
	if c == nil {
		c = Default()
	}
	r := &Resolver{}
	r.Set(c)
	return r
}

// For returns the effective limits of sc under the configuration in force.
func (r *Resolver) For(sc scope.Scope) Limits { return r.cur.Load().For(sc) }

// Config returns the configuration in force.
func (r *Resolver) Config() *Config { return r.cur.Load() }

// Set puts c in force and returns its generation (1 for the first).
func (r *Resolver) Set(c *Config) uint64 {
	r.cur.Store(c)
	return r.gen.Add(1)
}

// Generation counts the configurations put in force so far.
func (r *Resolver) Generation() uint64 { return r.gen.Load() }
