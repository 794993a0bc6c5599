// Package eventfacetquery is the REST storage of EventFacetQuery
// (activity.miloapis.com/v1alpha1): create-only summaries of stored event
// history (value counts per field and a time histogram), nothing persisted.
package eventfacetquery

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/eventpipe/eventpipe/internal/registry/eventquery"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/timerange"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Bounds of a facet query.
const (
	DefaultStart      = "now-7d"
	DefaultEnd        = "now"
	DefaultFacetLimit = 10
	MaxFacetLimit     = 100
	MaxFacets         = 8
	// AutoBuckets is the most buckets an automatic bucket size gives.
	AutoBuckets = 200
	// MaxBuckets is the most buckets a chosen size may give.
	MaxBuckets = 1000
)

// bucketLadder are the sizes automatic bucketing picks from, smallest
// first: the first that gives at most AutoBuckets buckets wins.
var bucketLadder = []time.Duration{
	time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour,
	12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour,
}

// Index is what EventFacetQuery needs from the store.
type Index interface {
	// QueryFacets counts facet values and events per bucket.
	QueryFacets(ctx context.Context, f chstore.HistoryFilter, facets []string, limit int, bucket time.Duration, l chstore.Limits) (*chstore.FacetResult, error)
}

// Deps are the storage's backends.
type Deps struct {
	Index     Index
	Watermark eventquery.Watermark
	Scopes    eventquery.Scopes
	Window    eventquery.QueryWindow
	Limits    chstore.Limits
	Now       func() time.Time
}

// REST serves EventFacetQuery: create only.
type REST struct {
	eventquery.Resource
	d Deps
}

var _ rest.Creater = (*REST)(nil)

// NewREST returns the storage.
func NewREST(d Deps) *REST {
	return &REST{Resource: eventquery.NewResource("EventFacetQuery", func() runtime.Object { return &v1alpha1.EventFacetQuery{} }), d: d}
}

// Create answers the query in the returned object's status.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	q, sc, now, err := eventquery.Begin[*v1alpha1.EventFacetQuery](ctx, r.Resource, obj, createValidation, r.d.Scopes, r.d.Now)
	if err != nil {
		return nil, err
	}
	kind := r.GroupKind()
	spec := field.NewPath("spec")
	startS, endS := q.Spec.StartTime, q.Spec.EndTime
	if startS == "" {
		startS = DefaultStart
	}
	if endS == "" {
		endS = DefaultEnd
	}
	win, errs, err := eventquery.ResolveWindow(ctx, r.d.Window, spec, startS, endS, now)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(err.Error())
	}
	if q.Spec.StartTime == "" {
		// The default start is capped by the tier rather than refused.
		if w, _, err := r.d.Window.QueryWindow(ctx); err == nil && win.Start.Before(now.Add(-w)) {
			win.Start = now.Add(-w).UTC()
			errs = dropField(errs, spec.Child("startTime"))
		}
	}
	sel, selErrs := eventquery.ParseSelector(spec.Child("fieldSelector"), q.Spec.FieldSelector)
	errs = append(errs, selErrs...)
	errs = append(errs, eventquery.ValidateNamespace(spec.Child("namespace"), q.Spec.Namespace)...)
	facets, limit, fErrs := validateFacets(spec.Child("facets"), q.Spec.Facets)
	errs = append(errs, fErrs...)
	bucket, bErrs := bucketSize(spec.Child("histogram", "bucketSize"), q.Spec.Histogram, win, len(errs) == 0)
	errs = append(errs, bErrs...)
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(kind, q.Name, errs)
	}

	at := r.d.Watermark.Load()
	hf := eventquery.Filter(sc, win, at, sel, q.Spec.Namespace)
	names := make([]string, len(facets))
	for i, f := range facets {
		names[i] = f.Field
	}
	res, err := r.d.Index.QueryFacets(ctx, hf, names, limit, bucket, r.d.Limits)
	if err != nil {
		return nil, eventquery.StoreError(kind, q.Name, spec, startS, r.d.Limits, err)
	}
	out := q.DeepCopy()
	out.Status = v1alpha1.EventFacetQueryStatus{
		EffectiveStartTime: &metav1.Time{Time: win.Start},
		EffectiveEndTime:   &metav1.Time{Time: win.End},
		Total:              int64(res.Total),
		ResourceVersion:    strconv.FormatUint(at, 10),
		Histogram:          &v1alpha1.HistogramResult{BucketSize: timerange.FormatDuration(bucket)},
	}
	for _, f := range facets {
		fr := v1alpha1.FacetResult{Field: f.Field}
		for i, v := range res.Facets[f.Field] {
			if i == int(f.Limit) {
				break
			}
			fr.Values = append(fr.Values, v1alpha1.FacetValue{Value: v.Value, Count: int64(v.Count)})
		}
		out.Status.Facets = append(out.Status.Facets, fr)
	}
	origin := win.Start.Truncate(time.Second)
	for i, n := range res.Buckets {
		out.Status.Histogram.Buckets = append(out.Status.Histogram.Buckets,
			v1alpha1.HistogramBucket{StartTime: metav1.NewTime(origin.Add(time.Duration(i) * bucket)), Count: int64(n)})
	}
	eventquery.Created(&out.ObjectMeta, now)
	return out, nil
}

func dropField(errs field.ErrorList, p *field.Path) field.ErrorList {
	var out field.ErrorList
	for _, e := range errs {
		if e.Field != p.String() {
			out = append(out, e)
		}
	}
	return out
}

// validateFacets checks the requested facets, filling in defaults; limit is
// the largest per-facet limit (the store reads that many per facet).
func validateFacets(p *field.Path, in []v1alpha1.FacetSpec) ([]v1alpha1.FacetSpec, int, field.ErrorList) {
	if len(in) == 0 {
		for _, name := range chstore.FacetNames() {
			in = append(in, v1alpha1.FacetSpec{Field: name})
		}
	}
	if len(in) > MaxFacets {
		return nil, 0, field.ErrorList{field.TooMany(p, len(in), MaxFacets)}
	}
	var errs field.ErrorList
	seen := map[string]bool{}
	out := make([]v1alpha1.FacetSpec, 0, len(in))
	limit := 0
	for i, f := range in {
		fp := p.Index(i)
		if _, ok := chstore.Facets[f.Field]; !ok {
			errs = append(errs, field.NotSupported(fp.Child("field"), f.Field, chstore.FacetNames()))
			continue
		}
		if seen[f.Field] {
			errs = append(errs, field.Duplicate(fp.Child("field"), f.Field))
			continue
		}
		seen[f.Field] = true
		if f.Limit == 0 {
			f.Limit = DefaultFacetLimit
		}
		if f.Limit < 1 || f.Limit > MaxFacetLimit {
			errs = append(errs, field.Invalid(fp.Child("limit"), f.Limit, fmt.Sprintf("must be from 1 to %d (omit it for %d)", MaxFacetLimit, DefaultFacetLimit)))
			continue
		}
		limit = max(limit, int(f.Limit))
		out = append(out, f)
	}
	return out, limit, errs
}

// bucketSize returns the histogram's bucket: the chosen one, checked, or
// an automatic one. checkCount is false when the window is unusable.
func bucketSize(p *field.Path, h *v1alpha1.HistogramSpec, win eventquery.Window, checkCount bool) (time.Duration, field.ErrorList) {
	if h == nil || strings.TrimSpace(h.BucketSize) == "" {
		if !checkCount {
			return time.Hour, nil
		}
		for _, b := range bucketLadder {
			if chstore.BucketCount(win.Start, win.End, b) <= AutoBuckets {
				return b, nil
			}
		}
		return bucketLadder[len(bucketLadder)-1], nil
	}
	b, err := timerange.ParseDuration(strings.TrimSpace(h.BucketSize))
	if err != nil {
		return 0, field.ErrorList{field.Invalid(p, h.BucketSize, err.Error()+`; e.g. "5m", "1h", "1d", or omit it for an automatic size`)}
	}
	if checkCount {
		if n := chstore.BucketCount(win.Start, win.End, b); n > MaxBuckets {
			return 0, field.ErrorList{field.Invalid(p, h.BucketSize, fmt.Sprintf("gives %d buckets over the window; at most %d are allowed: use a larger size or omit it", n, MaxBuckets))}
		}
	}
	return b, nil
}
