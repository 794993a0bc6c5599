package eventlog

import "sync"

// sharedValues are what the watches given one shared record derive from it,
// each computed once.
type sharedValues struct {
	mu sync.Mutex
	m  map[any]*sharedValue
}

type sharedValue struct {
	once sync.Once
	v    any
}

// Shared returns what make computes for this state under key. A Hub hands
// one and the same record to every watch the state is for; on such a
// record make runs once, with shared true, and every watch gets its value:
// with a hundred watches of every namespace, converting and encoding each
// state once instead of a hundred times. Shared records must not be
// modified, nor the values they share. On any other record make runs on
// every call, with shared false.
func (r *Record) Shared(key any, make func(shared bool) any) any {
	s := r.shared
	if s == nil {
		return make(false)
	}
	s.mu.Lock()
	e, ok := s.m[key]
	if !ok {
		if s.m == nil {
			s.m = map[any]*sharedValue{}
		}
		e = &sharedValue{}
		s.m[key] = e
	}
	s.mu.Unlock()
	e.once.Do(func() { e.v = make(true) })
	return e.v
}
