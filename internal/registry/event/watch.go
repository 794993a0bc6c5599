package event

import (
	"context"
	"maps"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/kubeevents/fields"
	"github.com/eventpipe/eventpipe/internal/registry/listquery"
	"github.com/eventpipe/eventpipe/internal/registry/tailwatch"
	"github.com/eventpipe/eventpipe/internal/watchtail"
	kfields "k8s.io/apimachinery/pkg/fields"
)

func eventFields(ev *corev1.Event) kfields.Set { return fields.Fields(ev) }

// Watch implements rest.Watcher. From a resourceVersion X it delivers every
// later state once, in order, tailing the log narrowed to the caller's scope
// and namespace at the subject level; selectors are applied in memory. With
// no resourceVersion (or "0") or with sendInitialEvents it first sends the
// current events as ADDED, as kube-apiserver does.
func (r *REST) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	req, err := listquery.Begin(ctx, opts, nil, r.scopes)
	if err != nil {
		return nil, err
	}
	q := query{req.Query}
	return tailwatch.Serve(ctx, req.Opts, tailwatch.Request[watchtail.State]{
		Initial: func(ctx context.Context) ([]runtime.Object, uint64, error) {
			// The initial state is a list's: consistent without a
			// resourceVersion, at the watermark for "0".
			at, err := r.listAt(ctx, req.Opts)
			if err != nil {
				return nil, 0, err
			}
			snap, err := r.snapshot(ctx, req.Scope, req.Namespace, at)
			if err != nil {
				return nil, 0, err
			}
			evs, _, err := r.listPage(ctx, req.Scope, req.Namespace, q, snap, nil, 0)
			if err != nil {
				return nil, 0, err
			}
			return tailwatch.Objects(evs, r.v.fromCore), at, nil
		},
		Bounds: r.log.Bounds,
		Tail: func(ctx context.Context, from uint64) (watchtail.Feed[watchtail.State], error) {
			return r.log.Tail(ctx, eventlog.FilterSubject(req.Scope, req.NamespaceFilter()), from)
		},
		NewObject: r.v.newObj,
		Event: func(st watchtail.State) (uint64, watch.Event, bool) {
			rec := st.Record
			typ, obj := q.transition(rec)
			if obj == nil {
				return rec.Seq, watch.Event{}, false
			}
			if obj != rec.Event {
				// The state before an update, at the update's
				// resourceVersion: made for this watch alone.
				return rec.Seq, watch.Event{Type: typ, Object: r.v.fromCore(obj)}, true
			}
			enc := r.v.encodings.Get(st, func(shared bool) *encodings {
				return &encodings{obj: r.v.fromCore(rec.Event), copy: shared}
			})
			return rec.Seq, watch.Event{Type: typ, Object: enc.object()}, true
		},
		Unavailable: unavailable,
	})
}

// transition is what a watch with q sends for rec, as kube-apiserver's
// storage watch decides it: a create or a delete is sent when the event
// matches; an update that keeps the event selected is MODIFIED, one that
// brings it into the selection ADDED, and one that takes it out DELETED
// with the state before the update (at the update's resourceVersion). obj
// is nil when nothing is sent. Updates whose publisher did not record the
// replaced state (see eventlog.Record.Prev) are taken as not having changed
// what the selectors see.
func (q query) transition(rec *eventlog.Record) (watch.EventType, *corev1.Event) {
	cur := q.matches(rec.Event)
	switch rec.Op {
	case eventlog.OpCreate, eventlog.OpDelete, eventlog.OpExpire:
		if !cur {
			return "", nil
		}
		if rec.Op == eventlog.OpCreate {
			return watch.Added, rec.Event
		}
		return watch.Deleted, rec.Event
	}
	prev := cur
	if rec.Prev != nil {
		prev = q.matches(rec.Prev)
	}
	switch {
	case cur && prev:
		return watch.Modified, rec.Event
	case cur:
		return watch.Added, rec.Event
	case prev:
		old := rec.Prev.DeepCopy()
		old.ResourceVersion = rec.Event.ResourceVersion
		return watch.Deleted, old
	}
	return "", nil
}

// selectionMayChange reports whether an update from old to ev changes
// anything a watch's selectors look at: the labels or a field-selector
// field. Only then does the stored update carry the old state.
func selectionMayChange(old, ev *corev1.Event) bool {
	return !maps.Equal(old.Labels, ev.Labels) || !maps.Equal(eventFields(old), eventFields(ev))
}
