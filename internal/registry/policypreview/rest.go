// Package policypreview is the create-only PolicyPreview resource: it
// evaluates a draft ActivityPolicy against the events given, or the newest
// stored events of the policy's kind in the caller's scope, and answers
// with the summaries, storing nothing.
package policypreview

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/eventpipe/eventpipe/internal/activity"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/resource"
	"github.com/eventpipe/eventpipe/internal/scope"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Events reads the newest stored events of a kind.
type Events interface {
	RecentEvents(ctx context.Context, sc *scope.Scope, kind string, since time.Time, limit int) ([]*eventlog.Record, error)
}

// Scopes limits reads to the caller's scope; nil means every scope.
type Scopes interface {
	ReadScope(ctx context.Context) (*scope.Scope, error)
}

// Limits on one preview.
const (
	defaultLimit = 20
	maxLimit     = 1000
	maxEvents    = 1000
	// lookback bounds the stored events a preview reads.
	lookback = 7 * 24 * time.Hour
)

// REST serves PolicyPreview.
type REST struct {
	resource.Type
	events Events
	scopes Scopes
}

var _ rest.Creater = (*REST)(nil)

// NewREST returns the storage.
func NewREST(events Events, scopes Scopes) *REST {
	return &REST{Type: resource.New(func() runtime.Object { return &v1alpha1.PolicyPreview{} }, "policypreview", false), events: events, scopes: scopes}
}

var gk = v1alpha1.SchemeGroupVersion.WithKind("PolicyPreview").GroupKind()

// Create evaluates the draft and returns the preview with its status.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	in, ok := obj.(*v1alpha1.PolicyPreview)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a PolicyPreview: %T", obj))
	}
	pp := in.DeepCopy()
	spec := field.NewPath("spec")
	policy, errs := activity.CompileSpec(&pp.Spec.Policy, spec.Child("policy"))
	if pp.Spec.Limit < 0 || pp.Spec.Limit > maxLimit {
		errs = append(errs, field.Invalid(spec.Child("limit"), pp.Spec.Limit, fmt.Sprintf("must be between 1 and %d (0 means %d)", maxLimit, defaultLimit)))
	}
	if len(pp.Spec.Events) > maxEvents {
		errs = append(errs, field.TooMany(spec.Child("events"), len(pp.Spec.Events), maxEvents))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(gk, pp.Name, errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, pp); err != nil {
			return nil, err
		}
	}
	policy.Name = "preview"
	events := pp.Spec.Events
	if len(events) == 0 {
		sc, err := r.scopes.ReadScope(ctx)
		if err != nil {
			return nil, err
		}
		limit := int(pp.Spec.Limit)
		if limit == 0 {
			limit = defaultLimit
		}
		kind := pp.Spec.Policy.Resource.Kind
		if kind == "*" {
			kind = ""
		}
		recs, err := r.events.RecentEvents(ctx, sc, kind, time.Now().Add(-lookback), limit)
		if err != nil {
			se := apierrors.NewServiceUnavailable(fmt.Sprintf("event storage is unavailable, retry shortly: %v", err))
			se.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
			return nil, se
		}
		for _, rec := range recs {
			events = append(events, *rec.Event)
		}
	}
	set := activity.NewSet([]*activity.Policy{policy})
	pp.Status.Results = make([]v1alpha1.PolicyPreviewResult, 0, len(events))
	for i := range events {
		ev := &events[i]
		o := set.Evaluate(ev)
		res := v1alpha1.PolicyPreviewResult{EventNamespace: ev.Namespace, EventName: ev.Name, Rule: o.Rule, Summary: o.Summary, Links: o.Links}
		if o.Policy == "" {
			res.Summary = ""
			if len(o.Errors) == 0 {
				res.Error = fmt.Sprintf("no rule matched (the policy covers %s/%s, the event is about %s %s)",
					pp.Spec.Policy.Resource.APIGroup, pp.Spec.Policy.Resource.Kind, ev.InvolvedObject.APIVersion, ev.InvolvedObject.Kind)
			}
		}
		if len(o.Errors) > 0 {
			res.Error = o.Errors[0].Error()
		}
		pp.Status.Results = append(pp.Status.Results, res)
	}
	pp.Spec.Events = nil // echoing inputs back only costs bandwidth
	pp.CreationTimestamp = metav1.NewTime(time.Now().UTC().Truncate(time.Second))
	return pp, nil
}
