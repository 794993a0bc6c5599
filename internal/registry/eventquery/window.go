package eventquery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/eventpipe/eventpipe/internal/fieldselector"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/timerange"
)

// QueryWindow says how far back (counted from now) the caller may query:
// the query access of the caller's tier. Implementations must be safe for
// concurrent use.
type QueryWindow interface {
	QueryWindow(ctx context.Context) (window time.Duration, tierName string, err error)
}

// DefaultQueryWindow is the window when tiers are not configured: 60 days
// for everybody, as the product promises.
const DefaultQueryWindow = 60 * 24 * time.Hour

// FixedQueryWindow gives every caller the same window.
type FixedQueryWindow struct {
	Window time.Duration
	Tier   string
}

// QueryWindow implements QueryWindow.
func (f FixedQueryWindow) QueryWindow(context.Context) (time.Duration, string, error) {
	return f.Window, f.Tier, nil
}

// Scopes decides which tenant's events a caller may read.
type Scopes interface {
	// ReadScope returns the caller's tenant; nil means every tenant
	// (platform callers).
	ReadScope(ctx context.Context) (*scope.Scope, error)
}

// Watermark is the writer's committed watermark: every state at or below
// it is in the index.
type Watermark interface {
	Load() uint64
}

// Window is a resolved, validated time window.
type Window struct {
	Start, End time.Time
}

// ResolveWindow parses and checks start and end against now and the
// caller's tier window. Every problem is returned, each on its field.
//
// Times are resolved to whole seconds (fractions truncated, "now" too):
// the API reports the effective window as metav1.Time, which has whole
// seconds, and the answer must be exactly the window it reports.
func ResolveWindow(ctx context.Context, qw QueryWindow, spec *field.Path, startS, endS string, now time.Time) (Window, field.ErrorList, error) {
	now = now.Truncate(time.Second)
	var errs field.ErrorList
	parse := func(name, s string) (time.Time, bool) {
		p := spec.Child(name)
		if strings.TrimSpace(s) == "" {
			errs = append(errs, field.Required(p, "give "+timerange.Examples))
			return time.Time{}, false
		}
		t, err := timerange.Parse(s, now)
		if err != nil {
			errs = append(errs, field.Invalid(p, s, "must be "+timerange.Examples))
			return time.Time{}, false
		}
		t = t.Truncate(time.Second)
		if t.After(now) {
			errs = append(errs, field.Invalid(p, s, fmt.Sprintf("must not be in the future (now is %s); use \"now\" or an earlier time", now.UTC().Format(time.RFC3339))))
			return time.Time{}, false
		}
		return t, true
	}
	start, okS := parse("startTime", startS)
	end, okE := parse("endTime", endS)
	if okS && okE && !end.After(start) {
		errs = append(errs, field.Invalid(spec.Child("endTime"), endS, "must be after spec.startTime (the window is [startTime, endTime))"))
	}
	if okS {
		window, tier, err := qw.QueryWindow(ctx)
		if err != nil {
			return Window{}, nil, fmt.Errorf("read the caller's query window: %w", err)
		}
		if oldest := now.Add(-window); start.Before(oldest) {
			errs = append(errs, field.Invalid(spec.Child("startTime"), startS, fmt.Sprintf(
				"must not be before %s: tier %q may query the last %s (counted back from now); use a later startTime such as \"now-%s\"",
				oldest.UTC().Format(time.RFC3339), tier, timerange.FormatDuration(window), timerange.FormatDuration(window))))
		}
	}
	return Window{Start: start.UTC(), End: end.UTC()}, errs, nil
}

// ParseSelector validates a field selector at path p.
func ParseSelector(p *field.Path, s string) ([]fieldselector.Requirement, field.ErrorList) {
	reqs, err := fieldselector.Parse(s)
	if err == nil {
		return reqs, nil
	}
	var fe *fieldselector.Error
	if errors.As(err, &fe) && fe.Unknown {
		return nil, field.ErrorList{field.Invalid(p, s, fmt.Sprintf("unknown field %q; allowed fields: %s", fe.Label, strings.Join(fieldselector.Labels(), ", ")))}
	}
	return nil, field.ErrorList{field.Invalid(p, s, err.Error()+`; the form is "field=value,field!=value,field in (a,b),field notin (a,b)"`)}
}

// ValidateNamespace checks an optional namespace.
func ValidateNamespace(p *field.Path, ns string) field.ErrorList {
	if ns == "" {
		return nil
	}
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(ns) {
		errs = append(errs, field.Invalid(p, ns, msg))
	}
	return errs
}

// StoreError turns a store error into the API's answer: a limit hit is the
// caller's to fix (narrow the query), anything else is the backend's.
func StoreError(gk schema.GroupKind, name string, spec *field.Path, startTime string, l chstore.Limits, err error) error {
	return StoreErrorNarrow(gk, name, spec, startTime, l, err, "a spec.namespace, or a more selective spec.fieldSelector")
}

// StoreErrorNarrow is StoreError for a kind whose other ways to narrow a
// query, besides its window, narrow names ("a spec.user or spec.verbs").
func StoreErrorNarrow(gk schema.GroupKind, name string, spec *field.Path, startTime string, l chstore.Limits, err error, narrow string) error {
	switch {
	case errors.Is(err, chstore.ErrTooManyRows):
		return apierrors.NewInvalid(gk, name, field.ErrorList{field.Invalid(spec.Child("startTime"), startTime, fmt.Sprintf(
			"the query would read more than %d stored rows; narrow it: a later spec.startTime or earlier spec.endTime, %s",
			l.MaxRowsToRead, narrow))})
	case errors.Is(err, chstore.ErrQueryTimeout):
		e := apierrors.NewTooManyRequests(fmt.Sprintf(
			"the query ran longer than %s and was stopped; narrow it (a shorter window, %s) or retry later",
			l.MaxExecutionTime, narrow), 1)
		return e
	}
	return apierrors.NewServiceUnavailable(fmt.Sprintf("the event store cannot answer now: %v", err))
}
