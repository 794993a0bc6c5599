package etcdfront

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// compactRevKey is where kube-apiserver's compactor keeps its compaction
// time (the key's version) and the revision it last compacted (the value).
// It is outside the resource prefix: every kube-apiserver writes it to every
// etcd it stores anything in.
const compactRevKey = "compact_rev_key"

// keyspace maps etcd keys to events: prefix + namespace + "/" + name.
type keyspace struct {
	// prefix is the events resource prefix, ending in "/".
	prefix string
	// health is the key kube-apiserver's /readyz/etcd check reads.
	health string
}

// newKeyspace returns the key space of kube-apiserver's --etcd-prefix
// etcdPrefix: events live under <etcdPrefix>/events/.
func newKeyspace(etcdPrefix string) keyspace {
	p := path.Join("/", etcdPrefix)
	return keyspace{prefix: path.Join(p, "events") + "/", health: path.Join(p, "health")}
}

// key returns the etcd key of an event.
func (k keyspace) key(namespace, name string) []byte {
	return []byte(k.prefix + namespace + "/" + name)
}

// keyOf returns the etcd key of a record's event.
func (k keyspace) keyOf(r *eventlog.Record) []byte { return k.key(r.Key.Namespace, r.Key.Name) }

// event returns the namespace and name of an event's key, or an error
// that says what keys the front holds.
func (k keyspace) event(key []byte) (namespace, name string, err error) {
	rest, ok := bytes.CutPrefix(key, []byte(k.prefix))
	if !ok {
		return "", "", fmt.Errorf("key %q is outside the Events key space: eventpipe stores only keys under %q "+
			"(kube-apiserver's --etcd-prefix and --etcd-servers-overrides=/events#…)", key, k.prefix)
	}
	ns, name, found := strings.Cut(string(rest), "/")
	if !found || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("key %q is not an event's key; allowed: %s<namespace>/<name>", key, k.prefix)
	}
	return ns, name, nil
}

// span is a key range below the prefix, [from, to) with to "" for no end,
// in the index's terms (namespace + "/" + name); namespace is the one
// namespace the range lies in, "" when it spans several.
type span struct {
	from, to  string
	namespace string
	// single is set for a range of one key.
	single bool
}

// spanOf returns the part of [key, end) that lies in the key space, as
// etcd reads a range (end empty: the one key; end "\x00": every key from
// key on). ok is false when no event key can be in it.
func (k keyspace) spanOf(key, end []byte) (s span, ok bool) {
	if len(end) == 0 {
		ns, name, err := k.event(key)
		if err != nil {
			return span{}, false
		}
		rel := ns + "/" + name
		return span{from: rel, to: rel + "\x00", namespace: ns, single: true}, true
	}
	p := []byte(k.prefix)
	pEnd := prefixEnd(p)
	lo, hi := key, end
	if bytes.Compare(lo, p) < 0 {
		lo = p
	}
	if bytes.Equal(hi, []byte{0}) || bytes.Compare(hi, pEnd) > 0 {
		hi = pEnd
	}
	if bytes.Compare(lo, hi) >= 0 {
		return span{}, false
	}
	s.from = string(lo[len(p):])
	if !bytes.Equal(hi, pEnd) {
		s.to = string(hi[len(p):])
	}
	// One namespace when both ends are inside "<ns>/": the log and the
	// index then read that namespace only.
	if ns, _, found := strings.Cut(s.from, "/"); found && ns != "" {
		nsEnd := string(prefixEnd([]byte(ns + "/")))
		if s.to != "" && s.to <= nsEnd {
			s.namespace = ns
		}
	}
	return s, true
}

// contains reports whether the event key rel (namespace + "/" + name) is
// in s.
func (s span) contains(rel string) bool {
	return rel >= s.from && (s.to == "" || rel < s.to)
}

// prefixEnd is etcd's range end for every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}
