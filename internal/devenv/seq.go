package devenv

import "sync/atomic"

// atomicSeq remembers the highest sequence stored.
type atomicSeq struct{ v atomic.Uint64 }

func (a *atomicSeq) Store(seq uint64) {
	for {
		cur := a.v.Load()
		if seq <= cur || a.v.CompareAndSwap(cur, seq) {
			return
		}
	}
}

func (a *atomicSeq) Load() uint64 { return a.v.Load() }
