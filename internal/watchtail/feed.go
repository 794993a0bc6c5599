package watchtail

import (
	"context"
	"errors"
)

// Feed is an ordered feed of log states for one watch, from the sequence it
// was started at on. A Hub's HubTail and a tail of the watch's own
// (eventlog.StreamTail) are Feeds.
//
// Order: States carries the states on the feed's subjects in increasing
// sequence order, each at most once, none older than the sequence the feed
// was started at. A Feed never skips a state it has gone past: it ends
// instead (see Err).
//
// Ending: the feed owns the channel States returns and closes it exactly
// once, when the feed ends: after Stop, when the context it was started
// with ends, or when it cannot go on. Consumers never close it. States
// already buffered may still be received after Stop. Once stopped or its
// context ended, a feed's goroutines exit whether or not the consumer
// drains States; until then it keeps reading the log, so every feed must be
// ended one of these two ways.
//
// All methods are safe to call from any goroutine, concurrently with each
// other and with receives from States.
type Feed[T any] interface {
	// States returns the channel of states, the same on every call. It is
	// closed when the feed ends.
	States() <-chan T
	// Stop ends the feed. It may be called any number of times, also after
	// the feed ended on its own; it does not wait for States to close.
	Stop()
	// Err says why the feed ended. It is meaningful once States is closed:
	// nil when the feed was stopped, its context ended or its server is
	// stopping (a client resumes elsewhere, as after any closed watch);
	// ErrFellBehind when the consumer did not keep up with a shared tail;
	// any other error when the log failed, which a watch reports to its
	// client.
	Err() error
	// Caught reports that the feed is caught up: given that the consumer
	// has received every state the feed sent up to sequence processed, it
	// returns a sequence seq such that every state of the feed's subjects
	// at or below seq has been sent on States (seq may be below processed
	// for a feed started ahead of the log; callers keep the larger). A
	// watch of a quiet subject uses it to advance its bookmarks with the
	// log rather than with its own last state. ok is false when that cannot be
	// told now: states are on their way, or the log did not answer within
	// ctx. Caught may ask the log (a tail of its own does).
	Caught(ctx context.Context, processed uint64) (seq uint64, ok bool)
}

// ErrFellBehind ends a HubTail whose consumer fell further behind than the
// hub keeps: the watch should end so that its client resumes from the last
// resourceVersion it saw (which then gets a tail of its own), as
// kube-apiserver's watch cache ends a watcher that does not keep up.
var ErrFellBehind = errors.New("the watch fell behind the shared tail")
