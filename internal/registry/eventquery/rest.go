package eventquery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/eventpipe/eventpipe/internal/kubeevents/conversion"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/timerange"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Page size bounds.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Index is what EventQuery needs from the store.
type Index interface {
	// QueryHistory returns one page of a history query.
	QueryHistory(ctx context.Context, q chstore.HistoryQuery, l chstore.Limits) ([]chstore.HistoryRecord, error)
}

// Options tune history queries.
type Options struct {
	// CursorKey signs continue tokens. Empty: a random key per process, so
	// tokens only work on the replica that issued them; replicas behind one
	// service must share a key.
	CursorKey []byte
	// CursorTTL is how long a continue token stays valid.
	CursorTTL time.Duration
	// Limits bound every query on the store.
	Limits chstore.Limits
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{CursorTTL: time.Hour, Limits: chstore.Limits{MaxRowsToRead: 50_000_000, MaxExecutionTime: 10 * time.Second}}
}

// Deps are the backends both query resources read through.
type Deps struct {
	Index     Index
	Watermark Watermark
	Scopes    Scopes
	Window    QueryWindow
	Signer    *Signer
	Limits    chstore.Limits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// REST serves EventQuery: create only.
type REST struct {
	Resource
	d Deps
}

var _ rest.Creater = (*REST)(nil)

// NewREST returns the storage.
func NewREST(d Deps) *REST {
	return &REST{Resource: NewResource("EventQuery", func() runtime.Object { return &v1alpha1.EventQuery{} }), d: d}
}

// Create answers the query in the returned object's status.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	q, sc, now, err := Begin[*v1alpha1.EventQuery](ctx, r.Resource, obj, createValidation, r.d.Scopes, r.d.Now)
	if err != nil {
		return nil, err
	}
	kind := r.GroupKind()
	spec := field.NewPath("spec")
	win, errs, err := ResolveWindow(ctx, r.d.Window, spec, q.Spec.StartTime, q.Spec.EndTime, now)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(err.Error())
	}
	sel, selErrs := ParseSelector(spec.Child("fieldSelector"), q.Spec.FieldSelector)
	errs = append(errs, selErrs...)
	errs = append(errs, ValidateNamespace(spec.Child("namespace"), q.Spec.Namespace)...)
	limit := int(q.Spec.Limit)
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		errs = append(errs, field.Invalid(spec.Child("limit"), q.Spec.Limit, fmt.Sprintf("must be from 1 to %d (omit it or use 0 for %d)", MaxLimit, DefaultLimit)))
	}
	bind := Binding{Kind: "EventQuery", StartTime: q.Spec.StartTime, EndTime: q.Spec.EndTime, Namespace: q.Spec.Namespace,
		FieldSelector: q.Spec.FieldSelector, Scope: sc}
	cur := Cursor{Window: win, AtSeq: r.d.Watermark.Load(), IssuedAt: now}
	var after *chstore.HistoryKey
	if q.Spec.Continue != "" {
		c, err := r.d.Signer.Decode(q.Spec.Continue, bind, now)
		switch {
		case errors.Is(err, ErrCursorExpired):
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("spec.continue: %v; run the query again without spec.continue (relative times are then resolved anew)", err))
		case err != nil:
			errs = append(errs, field.Invalid(spec.Child("continue"), q.Spec.Continue, err.Error()))
		default:
			cur = c
			after = &c.After
			// The window is the first page's; a relative time that now
			// resolves past the tier's limit is not the caller's fault.
			errs = DropWindowErrors(errs, spec)
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(kind, q.Name, errs)
	}

	hf := Filter(sc, cur.Window, cur.AtSeq, sel, q.Spec.Namespace)
	recs, err := r.d.Index.QueryHistory(ctx, chstore.HistoryQuery{HistoryFilter: hf, After: after, Limit: limit + 1}, r.d.Limits)
	if err != nil {
		return nil, StoreError(kind, q.Name, spec, q.Spec.StartTime, r.d.Limits, err)
	}
	out := q.DeepCopy()
	out.Status = v1alpha1.EventQueryStatus{
		EffectiveStartTime: &metav1.Time{Time: cur.Window.Start},
		EffectiveEndTime:   &metav1.Time{Time: cur.Window.End},
		ResourceVersion:    strconv.FormatUint(cur.AtSeq, 10),
	}
	if len(recs) > limit {
		recs = recs[:limit]
		last := recs[limit-1]
		cur.After = chstore.HistoryKeyOf(last.Record, last.LastTime)
		out.Status.Continue = r.d.Signer.Encode(bind, cur)
	}
	out.Status.Results = make([]eventsv1.Event, 0, len(recs))
	for _, rec := range recs {
		ev := conversion.ToEventsV1(rec.Event)
		ev.APIVersion, ev.Kind = eventsv1.SchemeGroupVersion.String(), "Event"
		out.Status.Results = append(out.Status.Results, *ev)
	}
	Created(&out.ObjectMeta, now)
	return out, nil
}

// DropWindowErrors removes the "in the future"/"beyond the tier" checks
// from a continued query: its window was checked when the first page was
// answered and is reused as it was. Syntax errors stay.
func DropWindowErrors(errs field.ErrorList, spec *field.Path) field.ErrorList {
	var out field.ErrorList
	for _, e := range errs {
		if e.Type == field.ErrorTypeInvalid && (e.Field == spec.Child("startTime").String() || e.Field == spec.Child("endTime").String()) {
			if s, ok := e.BadValue.(string); ok && parses(s) {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// parses reports whether s is a time the window accepts.
func parses(s string) bool {
	_, err := timerange.Parse(s, time.Now())
	return err == nil
}
