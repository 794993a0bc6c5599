package activity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"

	"github.com/eventpipe/eventpipe/internal/activity"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/listquery"
	"github.com/eventpipe/eventpipe/internal/registry/resource"
	"github.com/eventpipe/eventpipe/internal/registry/tailwatch"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/watchtail"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Log is what the storage needs from the ACTIVITIES stream.
type Log interface {
	Latest(ctx context.Context, subject string) (*activity.State, error)
	Bounds(ctx context.Context) (first, last uint64, err error)
	Tail(ctx context.Context, filter string, from uint64) (*activity.Tail, error)
}

// Index is what the storage needs from ClickHouse: lists, and the
// candidates Correlate ties a got Activity to.
type Index interface {
	ListActivities(ctx context.Context, q chstore.ActivityQuery) ([]chstore.ActivityRow, error)
	activity.RelatedFinder
}

// Watermark is the activity indexer's committed watermark.
type Watermark interface {
	Load() uint64
	WaitFor(ctx context.Context, seq uint64) error
}

// Scopes limits reads to the caller's scope; nil means every scope.
type Scopes interface {
	ReadScope(ctx context.Context) (*scope.Scope, error)
}

// REST serves Activities.
type REST struct {
	resource.Type
	log    Log
	index  Index
	wm     Watermark
	scopes Scopes
	window time.Duration
	now    func() time.Time
}

var (
	_ rest.KindProvider       = (*REST)(nil)
	_ rest.ShortNamesProvider = (*REST)(nil)
	_ rest.Getter             = (*REST)(nil)
	_ rest.Lister             = (*REST)(nil)
	_ rest.Watcher            = (*REST)(nil)
)

// NewREST returns the storage. window bounds lists by last seen time.
func NewREST(log Log, index Index, wm Watermark, scopes Scopes, window time.Duration) *REST {
	return &REST{Type: resource.New(func() runtime.Object { return &v1alpha1.Activity{} }, "activity", true), log: log, index: index, wm: wm, scopes: scopes, window: window, now: time.Now}
}

var gr = v1alpha1.Resource("activities")

func (r *REST) NewList() runtime.Object { return &v1alpha1.ActivityList{} }
func (r *REST) Kind() string            { return "Activity" }
func (r *REST) ShortNames() []string    { return []string{"act"} }

func unavailable(err error) error {
	se := apierrors.NewServiceUnavailable(fmt.Sprintf("activity storage is unavailable, retry shortly: %v", err))
	se.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
	return se
}

func subjectFor(sc *scope.Scope, ns, name string) string {
	if sc != nil {
		return activity.Subject(eventlog.Key{Scope: *sc, Namespace: ns, Name: name})
	}
	return activity.SubjectPrefix + ".*.*." + eventlog.EncodeToken(ns) + "." + eventlog.EncodeToken(name)
}

// Get implements rest.Getter: the newest state, from the stream while it
// holds one, else from ClickHouse (not windowed), with the Activities it is
// tied to (causedBy or caused; activity.Correlate) as of the activity
// watermark. Lists and watches leave those out: they would cost a query
// per item.
func (r *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	a, err := r.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := activity.Correlate(ctx, r.index, a, r.wm.Load()); err != nil {
		return nil, unavailable(err)
	}
	return a, nil
}

func (r *REST) get(ctx context.Context, name string) (*v1alpha1.Activity, error) {
	sc, err := r.scopes.ReadScope(ctx)
	if err != nil {
		return nil, err
	}
	ns := genericapirequest.NamespaceValue(ctx)
	st, err := r.log.Latest(ctx, subjectFor(sc, ns, name))
	if err != nil {
		return nil, unavailable(err)
	}
	if st != nil {
		return st.Activity, nil
	}
	rows, err := r.index.ListActivities(ctx, chstore.ActivityQuery{Scope: sc, Namespace: &ns, Name: &name, Limit: 1})
	if err != nil {
		return nil, unavailable(err)
	}
	if len(rows) == 0 {
		return nil, apierrors.NewNotFound(gr, name)
	}
	return activity.FromRow(&rows[0])
}

// continueToken resumes a list: the list's resourceVersion and the sort key
// of the last item returned.
type continueToken struct {
	RV        uint64 `json:"rv"`
	TS        int64  `json:"ts"`
	Nanos     uint32 `json:"nanos"`
	Namespace string `json:"ns"`
	Name      string `json:"name"`
	ScopeType string `json:"st"`
	ScopeName string `json:"sn"`
}

func encodeContinue(t continueToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (*continueToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var t continueToken
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.RV == 0 {
		return nil, apierrors.NewBadRequest("invalid continue token: use the metadata.continue value of the previous page unchanged")
	}
	return &t, nil
}

// query is what a list or watch selects.
type query struct{ listquery.Query }

// conds returns q's field conditions for the store; checkFields has made
// sure it has a column for each.
func (q query) conds() []chstore.FieldCond {
	var out []chstore.FieldCond
	for _, c := range q.Conds {
		out = append(out, chstore.FieldCond{Field: c.Field, Not: c.Not, Value: c.Value})
	}
	return out
}

// Fields returns the field set selectors match an Activity against.
func Fields(a *v1alpha1.Activity) fields.Set {
	return fields.Set{
		"metadata.name": a.Name, "metadata.namespace": a.Namespace,
		"spec.resource.kind": a.Spec.Resource.Kind, "spec.resource.name": a.Spec.Resource.Name,
		"spec.actor.name": a.Spec.Actor.Name, "spec.reason": a.Spec.Reason,
	}
}

func (q query) matches(a *v1alpha1.Activity) bool {
	return q.Matches(a.Labels, func() fields.Set { return Fields(a) })
}

// checkFields refuses selectors on fields Activities do not have, naming
// the ones they do.
func checkFields(opts *metainternalversion.ListOptions) error {
	if opts.FieldSelector == nil {
		return nil
	}
	for _, req := range opts.FieldSelector.Requirements() {
		if _, ok := chstore.ActivityFieldColumns[req.Field]; !ok {
			return apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s (allowed: metadata.name, metadata.namespace, spec.resource.kind, spec.resource.name, spec.actor.name, spec.reason)", req.Field))
		}
	}
	return nil
}

// listAt resolves the resourceVersion a list answers at: the watermark, or
// a newer one asked for once the indexer reaches it.
func (r *REST) listAt(ctx context.Context, rvParam string) (uint64, error) {
	w := r.wm.Load()
	if rvParam == "" || rvParam == "0" {
		return w, nil
	}
	rv, err := tailwatch.ParseResourceVersion(rvParam)
	if err != nil {
		return 0, err
	}
	if rv > w {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := r.wm.WaitFor(wctx, rv); err != nil {
			return 0, storage.NewTooLargeResourceVersionError(rv, r.wm.Load(), 0)
		}
		w = r.wm.Load()
	}
	return w, nil
}

// List implements rest.Lister: activities last seen within the window,
// newest first, as of the activity watermark.
func (r *REST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	req, err := listquery.Begin(ctx, opts, checkFields, r.scopes)
	if err != nil {
		return nil, err
	}
	opts = req.Opts
	var at uint64
	var after *chstore.ActivityCursor
	if opts.Continue != "" {
		tok, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, err
		}
		first, _, err := r.log.Bounds(ctx)
		if err != nil {
			return nil, unavailable(err)
		}
		if tok.RV+1 < first {
			return nil, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
		}
		at = tok.RV
		after = &chstore.ActivityCursor{LastTime: time.Unix(tok.TS, 0), LastNanos: tok.Nanos, Namespace: tok.Namespace, Name: tok.Name,
			Scope: scope.Scope{Type: tok.ScopeType, Name: tok.ScopeName}}
	} else if at, err = r.listAt(ctx, opts.ResourceVersion); err != nil {
		return nil, err
	}
	items, next, err := r.page(ctx, req.Scope, req.Namespace, query{req.Query}, at, after, opts.Limit)
	if err != nil {
		return nil, err
	}
	list := &v1alpha1.ActivityList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(at, 10)}, Items: items}
	if next != nil {
		list.Continue = encodeContinue(continueToken{RV: at, TS: next.LastTime.Unix(), Nanos: next.LastNanos,
			Namespace: next.Namespace, Name: next.Name, ScopeType: next.ScopeType, ScopeName: next.ScopeName})
	}
	return list, nil
}

// page reads up to limit matching activities (all when 0) after the
// cursor, and returns the row of the last one when more may follow.
func (r *REST) page(ctx context.Context, sc *scope.Scope, ns string, q query, at uint64, after *chstore.ActivityCursor, limit int64) ([]v1alpha1.Activity, *chstore.ActivityRow, error) {
	if at == 0 {
		return []v1alpha1.Activity{}, nil, nil // nothing indexed yet; AtSeq 0 would mean "no bound"
	}
	aq := chstore.ActivityQuery{Scope: sc, Since: r.now().Add(-r.window), AtSeq: at, Conds: q.conds(), After: after}
	if ns != metav1.NamespaceAll {
		aq.Namespace = &ns
	}
	chunk := 0
	if limit > 0 {
		chunk = int(limit) + 1
	}
	out := []v1alpha1.Activity{}
	var lastOut *chstore.ActivityRow
	for {
		aq.Limit = chunk
		rows, err := r.index.ListActivities(ctx, aq)
		if err != nil {
			return nil, nil, unavailable(err)
		}
		for i := range rows {
			a, err := activity.FromRow(&rows[i])
			if err != nil {
				return nil, nil, unavailable(err)
			}
			if !q.matches(a) {
				continue
			}
			if limit > 0 && int64(len(out)) == limit {
				return out, lastOut, nil
			}
			out = append(out, *a)
			lastOut = &rows[i]
		}
		if chunk == 0 || len(rows) < chunk {
			return out, nil, nil
		}
		last := rows[len(rows)-1]
		aq.After = &chstore.ActivityCursor{LastTime: last.LastTime, LastNanos: last.LastNanos, Namespace: last.Namespace, Name: last.Name,
			Scope: scope.Scope{Type: last.ScopeType, Name: last.ScopeName}}
	}
}

// Watch implements rest.Watcher with the events' contract: from a
// resourceVersion X every later state once, in order; with none (or "0")
// or sendInitialEvents, the current list first as ADDED.
func (r *REST) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	req, err := listquery.Begin(ctx, opts, checkFields, r.scopes)
	if err != nil {
		return nil, err
	}
	q := query{req.Query}
	return tailwatch.Serve(ctx, req.Opts, tailwatch.Request[*activity.State]{
		Initial: func(ctx context.Context) ([]runtime.Object, uint64, error) {
			at, err := r.listAt(ctx, req.Opts.ResourceVersion)
			if err != nil {
				return nil, 0, err
			}
			items, _, err := r.page(ctx, req.Scope, req.Namespace, q, at, nil, 0)
			if err != nil {
				return nil, 0, err
			}
			return tailwatch.Objects(items, func(a *v1alpha1.Activity) runtime.Object { return a }), at, nil
		},
		Bounds: r.log.Bounds,
		Tail: func(ctx context.Context, from uint64) (watchtail.Feed[*activity.State], error) {
			return r.log.Tail(ctx, activity.FilterSubject(req.Scope, req.NamespaceFilter()), from)
		},
		NewObject: func() runtime.Object { return &v1alpha1.Activity{} },
		Event: func(st *activity.State) (uint64, watch.Event, bool) {
			if !q.matches(st.Activity) {
				return st.Seq, watch.Event{}, false
			}
			// An Activity outlives its event's delete: there is no DELETED.
			typ := watch.Modified
			if st.New {
				typ = watch.Added
			}
			return st.Seq, watch.Event{Type: typ, Object: st.Activity}, true
		},
		Unavailable: unavailable,
	})
}
