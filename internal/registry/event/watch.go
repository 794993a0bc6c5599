package event

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/kubeevents/fields"
	kfields "k8s.io/apimachinery/pkg/fields"
)

// bookmarkInterval is how often a watch that asked for bookmarks gets one.
const bookmarkInterval = time.Minute

func eventFields(ev *corev1.Event) kfields.Set { return fields.Fields(ev) }

// Watch implements rest.Watcher. From a resourceVersion X it delivers every
// later state once, in order, tailing the log narrowed to the caller's scope
// and namespace at the subject level; selectors are applied in memory. With
// no resourceVersion (or "0") or with sendInitialEvents it first sends the
// current events as ADDED, as kube-apiserver does.
func (r *REST) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	if opts == nil {
		opts = &metainternalversion.ListOptions{}
	}
	sc, err := r.scopes.ReadScope(ctx)
	if err != nil {
		return nil, err
	}
	ns := genericapirequest.NamespaceValue(ctx)
	var nsp *string
	if ns != metav1.NamespaceAll {
		nsp = &ns
	}
	q := newQuery(opts)
	initial := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	legacyInitial := opts.SendInitialEvents == nil && (opts.ResourceVersion == "" || opts.ResourceVersion == "0")

	var from uint64 // the first sequence the tail delivers
	var snapshot []corev1.Event
	var at uint64
	if initial || legacyInitial {
		at = r.wm.Load()
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			rv, err := parseRV(opts.ResourceVersion)
			if err != nil {
				return nil, err
			}
			if rv > at {
				if err := r.waitForRV(ctx, rv); err != nil {
					return nil, err
				}
				at = r.wm.Load()
			}
		}
		snapshot, _, err = r.listPage(ctx, sc, ns, q, at, nil, 0)
		if err != nil {
			return nil, err
		}
		from = at + 1
	} else {
		rv, err := parseRV(opts.ResourceVersion)
		if err != nil {
			return nil, err
		}
		first, _, err := r.log.Bounds(ctx)
		if err != nil {
			return nil, unavailable(err)
		}
		if rv+1 < first {
			// As kube-apiserver's watch cache: the watch opens, then says 410.
			return errWatch(apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, first-1))), nil
		}
		from = rv + 1
	}
	tctx, cancel := context.WithCancel(ctx)
	tail, err := r.log.Tail(tctx, eventlog.FilterSubject(sc, nsp), from)
	if err != nil {
		cancel()
		return nil, unavailable(err)
	}
	w := &watcher{r: r, q: q, tail: tail, cancel: cancel, result: make(chan watch.Event, 100), done: make(chan struct{}),
		bookmarks: opts.AllowWatchBookmarks, lastRV: from - 1}
	go w.run(tctx, snapshot, initial, at)
	return w, nil
}

// watcher feeds one watch from a log tail.
type watcher struct {
	r         *REST
	q         query
	tail      *eventlog.Tail
	cancel    context.CancelFunc
	result    chan watch.Event
	done      chan struct{}
	once      sync.Once
	bookmarks bool
	lastRV    uint64
}

func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

// Stop ends the watch; the result channel is closed soon after.
func (w *watcher) Stop() {
	w.once.Do(func() {
		close(w.done)
		w.cancel()
		w.tail.Stop()
	})
}

func (w *watcher) send(ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-w.done:
		return false
	}
}

func (w *watcher) bookmark(rv uint64, initialEnd bool) bool {
	obj := w.r.v.newObj()
	m := obj.(metav1.Object)
	m.SetResourceVersion(strconv.FormatUint(rv, 10))
	if initialEnd {
		m.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return w.send(watch.Event{Type: watch.Bookmark, Object: obj})
}

func (w *watcher) run(ctx context.Context, snapshot []corev1.Event, initial bool, at uint64) {
	defer close(w.result)
	defer w.Stop()
	for i := range snapshot {
		if !w.send(watch.Event{Type: watch.Added, Object: w.r.v.fromCore(&snapshot[i])}) {
			return
		}
	}
	// The end of the initial events is marked only for clients that take
	// bookmarks (watch-list: sendInitialEvents with allowWatchBookmarks).
	if initial && w.bookmarks && !w.bookmark(at, true) {
		return
	}
	var tick <-chan time.Time
	if w.bookmarks {
		t := time.NewTicker(bookmarkInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case rec, ok := <-w.tail.C:
			if !ok {
				if err := w.tail.Err(); err != nil {
					w.send(watch.Event{Type: watch.Error, Object: &unavailable(err).(*apierrors.StatusError).ErrStatus})
				}
				return
			}
			w.lastRV = rec.Seq
			if !w.q.matches(rec.Event) {
				continue
			}
			typ := watch.Modified
			switch rec.Op {
			case eventlog.OpCreate:
				typ = watch.Added
			case eventlog.OpDelete:
				typ = watch.Deleted
			}
			if !w.send(watch.Event{Type: typ, Object: w.r.v.fromCore(rec.Event)}) {
				return
			}
		case <-tick:
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

// errWatch is a watch that delivers one error and ends.
func errWatch(err *apierrors.StatusError) watch.Interface {
	ch := make(chan watch.Event, 1)
	ch <- watch.Event{Type: watch.Error, Object: &err.ErrStatus}
	close(ch)
	return watch.NewProxyWatcher(ch)
}
