package etcdfront

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// StateBucket is the JetStream key-value bucket that holds what etcd keeps
// besides keys: leases and each scope's compaction. It is small (one entry
// per live lease: kube-apiserver grants one per minute or so) and shared by
// every front, which follow it with a watch.
const StateBucket = "EVENTPIPE_ETCD"

// lease is one etcd lease.
type lease struct {
	TTL     int64     `json:"ttl"`
	Granted time.Time `json:"granted"`
	Expires time.Time `json:"expires"`
}

// compaction is a scope's compact_rev_key and the revision compacted to.
type compaction struct {
	// Version, Value and ModRevision are compact_rev_key's.
	Version     int64  `json:"version"`
	Value       string `json:"value"`
	ModRevision int64  `json:"modRevision"`
	// Compacted is the highest revision Compact was called with.
	Compacted int64 `json:"compacted"`
	// rev is the bucket entry's revision, for compare-and-swap.
	rev uint64
}

type leaseKey struct {
	sc scope.Scope
	id int64
}

// State is the front's state bucket as this process last saw it. Its
// methods are safe for concurrent use.
type State struct {
	kv jetstream.KeyValue

	mu       sync.Mutex
	leases   map[leaseKey]lease
	compacts map[scope.Scope]compaction
	// changed is closed, and replaced, whenever a compaction changes.
	changed chan struct{}
	// done is closed when the bucket's watch ends.
	done chan struct{}
}

// OpenState opens (creating it if absent) the state bucket with replicas
// copies and follows it until ctx ends.
func OpenState(ctx context.Context, js jetstream.JetStream, replicas int) (*State, error) {
	kv, err := eventlog.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket: StateBucket, Description: "eventpipe etcd front: leases and compaction", History: 1,
		Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd front: state bucket %s: %w", StateBucket, err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd front: watch state bucket %s: %w", StateBucket, err)
	}
	st := &State{kv: kv, leases: map[leaseKey]lease{}, compacts: map[scope.Scope]compaction{},
		changed: make(chan struct{}), done: make(chan struct{})}
	loaded := make(chan struct{})
	go st.follow(ctx, w, loaded)
	select {
	case <-loaded:
		return st, nil
	case <-st.done:
		return nil, fmt.Errorf("etcd front: state bucket %s: the watch ended while loading", StateBucket)
	}
}

// Done is closed once the bucket is no longer followed (ctx ended).
func (st *State) Done() <-chan struct{} { return st.done }

// follow applies the bucket's entries until ctx ends; loaded is closed once
// the entries present at the start are applied.
func (st *State) follow(ctx context.Context, w jetstream.KeyWatcher, loaded chan struct{}) {
	defer close(st.done)
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				close(loaded)
				continue
			}
			st.apply(e)
		}
	}
}

// apply records one bucket entry.
func (st *State) apply(e jetstream.KeyValueEntry) {
	st.mu.Lock()
	defer st.mu.Unlock()
	gone := e.Operation() != jetstream.KeyValuePut
	kind, sc, id, err := parseStateKey(e.Key())
	if err != nil {
		return // not ours
	}
	switch kind {
	case "lease":
		k := leaseKey{sc, id}
		var l lease
		if gone || json.Unmarshal(e.Value(), &l) != nil {
			delete(st.leases, k)
			return
		}
		st.leases[k] = l
	case "compact":
		var c compaction
		if gone || json.Unmarshal(e.Value(), &c) != nil {
			return
		}
		c.rev = e.Revision()
		if old, ok := st.compacts[sc]; ok && old.rev >= c.rev {
			return
		}
		st.compacts[sc] = c
		close(st.changed)
		st.changed = make(chan struct{})
	}
}

// stateKey is a bucket key: kind, the scope in hex (bucket keys allow few
// characters), and for leases the ID.
func stateKey(kind string, sc scope.Scope, id int64) string {
	k := kind + "." + hex.EncodeToString([]byte(sc.String()))
	if kind == "lease" {
		k += "." + strconv.FormatInt(id, 10)
	}
	return k
}

func parseStateKey(k string) (kind string, sc scope.Scope, id int64, err error) {
	parts := strings.Split(k, ".")
	if len(parts) < 2 {
		return "", sc, 0, fmt.Errorf("state key %q: too short", k)
	}
	b, err := hex.DecodeString(parts[1])
	if err != nil {
		return "", sc, 0, err
	}
	if sc, err = scope.Parse(string(b)); err != nil {
		return "", sc, 0, err
	}
	switch {
	case parts[0] == "lease" && len(parts) == 3:
		id, err = strconv.ParseInt(parts[2], 10, 64)
		return "lease", sc, id, err
	case parts[0] == "compact" && len(parts) == 2:
		return "compact", sc, 0, nil
	}
	return "", sc, 0, fmt.Errorf("state key %q: unknown", k)
}

// Lease limits, as etcd has them: a shorter TTL is raised to the minimum.
const (
	minLeaseTTL = 2
	maxLeaseTTL = 9_000_000_000
)

var errLeaseExists = errors.New("lease exists")

// grant records a new lease; id 0 picks a free one.
func (st *State) grant(ctx context.Context, sc scope.Scope, id, ttl int64, now time.Time) (int64, int64, error) {
	ttl = max(ttl, minLeaseTTL)
	l := lease{TTL: ttl, Granted: now, Expires: now.Add(time.Duration(ttl) * time.Second)}
	b, _ := json.Marshal(l)
	for {
		pick := id
		if pick == 0 {
			pick = randomLeaseID()
		}
		_, err := st.kv.Create(ctx, stateKey("lease", sc, pick), b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			if id != 0 {
				return 0, 0, errLeaseExists
			}
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		st.mu.Lock()
		st.leases[leaseKey{sc, pick}] = l
		st.mu.Unlock()
		return pick, ttl, nil
	}
}

// randomLeaseID is a positive 63-bit ID: unique across fronts and restarts
// without coordination, as etcd's IDs are unique within a cluster.
func randomLeaseID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:])>>1) | 1
}

// leaseOf returns a lease; ok is false when there is no such lease or it
// ran out.
func (st *State) leaseOf(sc scope.Scope, id int64, now time.Time) (lease, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	l, ok := st.leases[leaseKey{sc, id}]
	if !ok || !now.Before(l.Expires) {
		return lease{}, false
	}
	return l, true
}

// setExpiry stores a lease's new expiry (a keep-alive, or now for a revoke).
func (st *State) setExpiry(ctx context.Context, sc scope.Scope, id int64, l lease, expires time.Time) error {
	l.Expires = expires
	b, _ := json.Marshal(l)
	if _, err := st.kv.Put(ctx, stateKey("lease", sc, id), b); err != nil {
		return err
	}
	st.mu.Lock()
	st.leases[leaseKey{sc, id}] = l
	st.mu.Unlock()
	return nil
}

// forget removes a lease whose keys have all been ended.
func (st *State) forget(ctx context.Context, sc scope.Scope, id int64) error {
	if err := st.kv.Delete(ctx, stateKey("lease", sc, id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	st.mu.Lock()
	delete(st.leases, leaseKey{sc, id})
	st.mu.Unlock()
	return nil
}

// expired returns the leases that ran out by now.
func (st *State) expired(now time.Time) map[leaseKey]lease {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := map[leaseKey]lease{}
	for k, l := range st.leases {
		if !now.Before(l.Expires) {
			out[k] = l
		}
	}
	return out
}

// leasesOf returns the live leases of a scope.
func (st *State) leasesOf(sc scope.Scope, now time.Time) []int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	var ids []int64
	for k, l := range st.leases {
		if k.sc == sc && now.Before(l.Expires) {
			ids = append(ids, k.id)
		}
	}
	return ids
}

// compactionOf returns a scope's compaction and a channel closed when any
// compaction changes.
func (st *State) compactionOf(sc scope.Scope) (compaction, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.compacts[sc], st.changed
}

var errCompactionChanged = errors.New("compaction changed")

// swapCompaction stores c for sc if the bucket still holds old.
func (st *State) swapCompaction(ctx context.Context, sc scope.Scope, old, c compaction) error {
	b, _ := json.Marshal(c)
	k := stateKey("compact", sc, 0)
	var rev uint64
	var err error
	if old.rev == 0 {
		rev, err = st.kv.Create(ctx, k, b)
	} else {
		rev, err = st.kv.Update(ctx, k, b, old.rev)
	}
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return errCompactionChanged
		}
		return err
	}
	c.rev = rev
	st.mu.Lock()
	if cur, ok := st.compacts[sc]; !ok || cur.rev < rev {
		st.compacts[sc] = c
		close(st.changed)
		st.changed = make(chan struct{})
	}
	st.mu.Unlock()
	return nil
}
