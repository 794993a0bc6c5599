package watchtail

import (
	"sync"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// State is one state of the log as a Feed delivers it.
type State struct {
	// Record is the state. From a Hub it is the same record for every
	// watch the state is for: read-only, as are its Event and Prev.
	Record *eventlog.Record
	// derived holds what watches derive from a shared record; nil on a
	// state the watch has to itself.
	derived *derived
}

// Shared reports whether st's record is shared with other watches.
func (st State) Shared() bool { return st.derived != nil }

// derived are the values the watches given one shared state derive from it,
// each made once, by Memo.
type derived struct {
	mu sync.Mutex // guards m
	m  map[any]*memoValue
}

type memoValue struct {
	once sync.Once
	v    any
}

// Memo is one kind of value that watches derive from a state, of type V:
// the watch's object for one API view, or its encoding. With a hundred
// watches of every namespace, a value made once per state instead of once
// per watch and state is most of a busy server's CPU. Memos are compared
// by identity: make one per kind of value (NewMemo), not per watch.
type Memo[V any] struct {
	name string // for debugging; also gives Memo a size, so each is distinct
}

// NewMemo returns a Memo; name says what it holds.
func NewMemo[V any](name string) *Memo[V] { return &Memo[V]{name: name} }

// Get returns what derive makes of st. On a shared state (see
// State.Shared) derive runs once, with shared true, whichever watch asks
// first, and every watch gets that value: it must then not be modified,
// nor what it refers to. On a state of the watch's own, derive runs on
// every call, with shared false. Get is safe for concurrent use.
func (m *Memo[V]) Get(st State, derive func(shared bool) V) V {
	d := st.derived
	if d == nil {
		return derive(false)
	}
	d.mu.Lock()
	e, ok := d.m[m]
	if !ok {
		if d.m == nil {
			d.m = map[any]*memoValue{}
		}
		e = &memoValue{}
		d.m[m] = e
	}
	d.mu.Unlock()
	e.once.Do(func() { e.v = derive(true) })
	return e.v.(V)
}
