// Package tailwatch turns an ordered feed of log states (a watchtail.Feed)
// into a Kubernetes watch: the initial objects as ADDED, the
// end-of-initial-events bookmark, every later state in order, periodic
// bookmarks, 410 for a resourceVersion the log no longer holds, and a
// Status when the feed fails. The Events and Activities registries serve
// their watches with Serve; each says how to list its initial objects,
// tail its log and turn one of its states into a watch event.
//
// It is the Kubernetes side of a watch; internal/watchtail, which feeds
// it, knows nothing of Kubernetes objects, so that other front doors over
// the log can share that part.
package tailwatch

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/eventpipe/eventpipe/internal/watchtail"
)

// bookmarkInterval is how often a watch that asked for bookmarks gets one,
// in nanoseconds: a minute, as kube-apiserver's, or what a test set.
var bookmarkInterval atomic.Int64

func init() { bookmarkInterval.Store(int64(time.Minute)) }

// SetBookmarkInterval changes how often watches started from now on get
// bookmarks, for tests that cannot wait a minute; the returned function
// restores the previous interval.
func SetBookmarkInterval(d time.Duration) (restore func()) {
	old := bookmarkInterval.Swap(int64(d))
	return func() { bookmarkInterval.Store(old) }
}

// fellBehind counts watches ended because they did not keep up with the
// shared tail. It is the one sign, on the server, that watches are not
// delivered to fast enough: a watch's client (or its connection) reads
// slower than events arrive, or the server is too busy to encode them.
// One counter for the process, whichever registry serves it.
var fellBehind = prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_watches_fell_behind_total",
	Help: "Watches ended because they fell behind the stream's shared tail; their clients watch again from their last resourceVersion."})

// RegisterMetrics registers the watches' metrics on reg. Registering them
// twice on one registry (two servers in one process) is not an error.
func RegisterMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	if err := reg.Register(fellBehind); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

// Config says what a watch sends besides the tail's states.
type Config[T any] struct {
	// Initial are sent as ADDED first (watch-list and legacy initial events).
	Initial []runtime.Object
	// InitialEnd marks the end of Initial with a bookmark at At, sent only
	// when Bookmarks is set (kube-apiserver's watch-list protocol).
	InitialEnd bool
	At         uint64
	// Bookmarks sends a bookmark at the last sequence seen every
	// BookmarkInterval.
	Bookmarks bool
	// From is the first sequence the tail delivers.
	From uint64
	// NewObject returns an empty object of the watched kind, for bookmarks.
	NewObject func() runtime.Object
	// Event turns a state into its sequence and watch event; ok is false
	// for states the watch does not select.
	Event func(T) (seq uint64, ev watch.Event, ok bool)
	// Unavailable is the Status sent when the tail fails.
	Unavailable func(error) *metav1.Status
}

// Request is what Serve needs of a registry to serve one watch of its
// kind: how to list the initial objects, how to tail its log, and how one
// of its states becomes a watch event.
type Request[T any] struct {
	// Initial returns the objects a watch with initial events sends first,
	// and the sequence they are current at: what the registry's List
	// answers for the same options.
	Initial func(ctx context.Context) (objs []runtime.Object, at uint64, err error)
	// Bounds returns the log's first and last sequences.
	Bounds func(ctx context.Context) (first, last uint64, err error)
	// Tail starts the log's feed of the watch's states at from.
	Tail func(ctx context.Context, from uint64) (watchtail.Feed[T], error)
	// NewObject, Event: see Config.
	NewObject func() runtime.Object
	Event     func(T) (seq uint64, ev watch.Event, ok bool)
	// Unavailable turns an error of the log into the registry's answer
	// (503 with Retry-After).
	Unavailable func(error) error
}

// Serve serves a watch with opts as kube-apiserver's storage does. From a
// resourceVersion X it delivers every later state once, in order (or opens
// and says 410 Expired when the log no longer holds what follows X). With
// no resourceVersion (or "0"), or with sendInitialEvents, it first sends
// the current objects as ADDED, then, for watch-list clients that take
// bookmarks, the end-of-initial-events bookmark.
func Serve[T any](ctx context.Context, opts *metainternalversion.ListOptions, req Request[T]) (watch.Interface, error) {
	initial := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	legacyInitial := opts.SendInitialEvents == nil && (opts.ResourceVersion == "" || opts.ResourceVersion == "0")
	var from, at uint64 // from: the first sequence the tail delivers
	var objs []runtime.Object
	if initial || legacyInitial {
		var err error
		if objs, at, err = req.Initial(ctx); err != nil {
			return nil, err
		}
		from = at + 1
	} else {
		var expired watch.Interface
		var err error
		if from, expired, err = From(ctx, opts.ResourceVersion, req.Bounds, req.Unavailable); err != nil || expired != nil {
			return expired, err
		}
	}
	tctx, cancel := context.WithCancel(ctx)
	tail, err := req.Tail(tctx, from)
	if err != nil {
		cancel()
		return nil, req.Unavailable(err)
	}
	return New(tctx, cancel, tail, Config[T]{
		Initial: objs, InitialEnd: initial, At: at, Bookmarks: opts.AllowWatchBookmarks, From: from,
		NewObject: req.NewObject, Event: req.Event,
		Unavailable: func(err error) *metav1.Status { return statusOf(req.Unavailable(err)) },
	}), nil
}

// statusOf returns the Status an API error carries, or a 500 for one that
// is not an API error.
func statusOf(err error) *metav1.Status {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		st := status.Status()
		return &st
	}
	return &apierrors.NewInternalError(err).ErrStatus
}

// New starts feeding a watch from tail until the client stops it, ctx ends
// or the tail ends; cancel is called when it stops (it should end the
// tail's context).
func New[T any](ctx context.Context, cancel context.CancelFunc, tail watchtail.Feed[T], c Config[T]) watch.Interface {
	w := &watcher[T]{c: c, tail: tail, cancel: cancel, result: make(chan watch.Event, 100), done: make(chan struct{}), lastRV: c.From - 1}
	go w.run(ctx)
	return w
}

// Error is a watch that delivers one error and ends, as kube-apiserver's
// watch cache answers a resourceVersion it no longer has: the watch opens,
// then says 410.
func Error(status *metav1.Status) watch.Interface {
	ch := make(chan watch.Event, 1)
	ch <- watch.Event{Type: watch.Error, Object: status}
	close(ch)
	return watch.NewProxyWatcher(ch)
}

type watcher[T any] struct {
	c      Config[T]
	tail   watchtail.Feed[T]
	cancel context.CancelFunc
	result chan watch.Event
	done   chan struct{}
	once   sync.Once
	lastRV uint64
}

func (w *watcher[T]) ResultChan() <-chan watch.Event { return w.result }

// Stop ends the watch; the result channel is closed soon after.
func (w *watcher[T]) Stop() {
	w.once.Do(func() {
		close(w.done)
		w.cancel()
		w.tail.Stop()
	})
}

func (w *watcher[T]) send(ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-w.done:
		return false
	}
}

func (w *watcher[T]) bookmark(rv uint64, initialEnd bool) bool {
	obj := w.c.NewObject()
	m := obj.(metav1.Object)
	m.SetResourceVersion(strconv.FormatUint(rv, 10))
	if initialEnd {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return w.send(watch.Event{Type: watch.Bookmark, Object: obj})
}

func (w *watcher[T]) run(ctx context.Context) {
	defer close(w.result)
	defer w.Stop()
	for _, obj := range w.c.Initial {
		if !w.send(watch.Event{Type: watch.Added, Object: obj}) {
			return
		}
	}
	// The end of the initial events is marked only for clients that take
	// bookmarks (watch-list: sendInitialEvents with allowWatchBookmarks).
	if w.c.InitialEnd && w.c.Bookmarks && !w.bookmark(w.c.At, true) {
		return
	}
	var tick <-chan time.Time
	if w.c.Bookmarks {
		t := time.NewTicker(time.Duration(bookmarkInterval.Load()))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case st, ok := <-w.tail.States():
			if !ok {
				// A watch that fell behind the shared tail just ends, as
				// kube-apiserver ends a watcher that does not keep up: its
				// client watches again from the last resourceVersion it saw.
				if err := w.tail.Err(); errors.Is(err, watchtail.ErrFellBehind) {
					fellBehind.Inc()
				} else if err != nil {
					w.send(watch.Event{Type: watch.Error, Object: w.c.Unavailable(err)})
				}
				return
			}
			seq, ev, ok := w.c.Event(st)
			w.lastRV = seq
			if ok && !w.send(ev) {
				return
			}
		case <-tick:
			// In a quiet stretch the bookmark moves on with the stream, not
			// only with the watch's own states.
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if seq, ok := w.tail.Caught(cctx, w.lastRV); ok && seq > w.lastRV {
				w.lastRV = seq
			}
			cancel()
			if !w.bookmark(w.lastRV, false) {
				return
			}
		case <-w.done:
			return
		case <-ctx.Done():
			return
		}
	}
}
