// Package tailwatch turns an ordered stream tail into a Kubernetes watch:
// the initial objects as ADDED, the end-of-initial-events bookmark, every
// later state in order, periodic bookmarks, and a Status when the tail
// fails. The Events and Activities registries share it; each says how one
// of its states becomes a watch event.
package tailwatch

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
				if err := w.tail.Err(); err != nil && !errors.Is(err, watchtail.ErrFellBehind) {
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
