package auditlogquery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/eventpipe/eventpipe/internal/registry/eventquery"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Page size bounds, as EventQuery's.
const (
	DefaultLimit = eventquery.DefaultLimit
	MaxLimit     = eventquery.MaxLimit
)

// Index is what AuditLogQuery needs from the store; *clickhouse.Store is
// one.
type Index interface {
	// QueryAudit returns one page of audit records, each record once.
	QueryAudit(ctx context.Context, q chstore.AuditQuery, l chstore.Limits) ([]chstore.AuditRecord, error)
}

// Watermark is the audit indexer's committed watermark: every AUDIT
// record at or below it is in the index. It must be safe for concurrent
// use.
type Watermark = eventquery.Watermark

// Deps are what the storage reads through.
type Deps struct {
	Index     Index
	Watermark Watermark
	Scopes    eventquery.Scopes
	Window    eventquery.QueryWindow
	Signer    *eventquery.Signer
	Limits    chstore.Limits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Kind is the resource's kind, also the continue token's.
const Kind = "AuditLogQuery"

// REST serves AuditLogQuery: create only.
type REST struct {
	eventquery.Resource
	d Deps
}

var _ rest.Creater = (*REST)(nil)

// NewREST returns the storage.
func NewREST(d Deps) *REST {
	return &REST{Resource: eventquery.NewResource(Kind, func() runtime.Object { return &v1alpha1.AuditLogQuery{} }), d: d}
}

// toHistoryKey and fromHistoryKey carry an audit record's position in the
// continue token that EventQuery's Signer signs: the request time and
// scope in their own slots, the audit ID and stage in those of the
// namespace and name.
func toHistoryKey(k chstore.AuditKey) chstore.HistoryKey {
	return chstore.HistoryKey{LastTime: k.RequestTime, Scope: k.Scope, Namespace: k.AuditID, Name: k.Stage}
}

func fromHistoryKey(k chstore.HistoryKey) chstore.AuditKey {
	return chstore.AuditKey{RequestTime: k.LastTime, Scope: k.Scope, AuditID: k.Namespace, Stage: k.Name}
}

// Create answers the query in the returned object's status.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	q, sc, now, err := eventquery.Begin[*v1alpha1.AuditLogQuery](ctx, r.Resource, obj, createValidation, r.d.Scopes, r.d.Now)
	if err != nil {
		return nil, err
	}
	kind := r.GroupKind()
	spec := field.NewPath("spec")
	win, errs, err := eventquery.ResolveWindow(ctx, r.d.Window, spec, q.Spec.StartTime, q.Spec.EndTime, now)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(err.Error())
	}
	aq, filterErrs := parseSpec(spec, &q.Spec)
	errs = append(errs, filterErrs...)
	limit := int(q.Spec.Limit)
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		errs = append(errs, field.Invalid(spec.Child("limit"), q.Spec.Limit, fmt.Sprintf("must be from 1 to %d (omit it or use 0 for %d)", MaxLimit, DefaultLimit)))
	}
	bind := eventquery.Binding{Kind: Kind, StartTime: q.Spec.StartTime, EndTime: q.Spec.EndTime, Namespace: q.Spec.Namespace,
		Params: params(&q.Spec), Scope: sc}
	cur := eventquery.Cursor{Window: win, AtSeq: r.d.Watermark.Load(), IssuedAt: now}
	if q.Spec.Continue != "" {
		c, err := r.d.Signer.Decode(q.Spec.Continue, bind, now)
		switch {
		case errors.Is(err, eventquery.ErrCursorExpired):
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("spec.continue: %v; run the query again without spec.continue (relative times are then resolved anew)", err))
		case err != nil:
			errs = append(errs, field.Invalid(spec.Child("continue"), q.Spec.Continue, err.Error()))
		default:
			cur = c
			after := fromHistoryKey(c.After)
			aq.After = &after
			errs = eventquery.DropWindowErrors(errs, spec)
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(kind, q.Name, errs)
	}
	aq.Scope, aq.Start, aq.End, aq.AtSeq, aq.Limit = sc, cur.Window.Start, cur.Window.End, cur.AtSeq, limit+1
	recs, err := r.d.Index.QueryAudit(ctx, aq, r.d.Limits)
	if err != nil {
		return nil, eventquery.StoreErrorNarrow(kind, q.Name, spec, q.Spec.StartTime, r.d.Limits, err,
			"a spec.user, spec.verbs, spec.resource or spec.namespace")
	}
	out := q.DeepCopy()
	out.Status = v1alpha1.AuditLogQueryStatus{
		EffectiveStartTime: &metav1.Time{Time: cur.Window.Start},
		EffectiveEndTime:   &metav1.Time{Time: cur.Window.End},
		ResourceVersion:    strconv.FormatUint(cur.AtSeq, 10),
	}
	if len(recs) > limit {
		recs = recs[:limit]
		cur.After = toHistoryKey(recs[limit-1].Key)
		out.Status.Continue = r.d.Signer.Encode(bind, cur)
	}
	out.Status.Results = make([]auditv1.Event, 0, len(recs))
	for i := range recs {
		out.Status.Results = append(out.Status.Results, Event(&recs[i].AuditRow))
	}
	eventquery.Created(&out.ObjectMeta, now)
	return out, nil
}

// Event returns the audit.k8s.io/v1 Event row holds: its stored body as
// kube-apiserver sent it, or, should the body not decode, the event made
// from the row's indexed columns (without request and response objects),
// so that one damaged record does not fail every query over it.
func Event(row *chstore.AuditRow) auditv1.Event {
	var ev auditv1.Event
	if err := json.Unmarshal(row.Body, &ev); err != nil || ev.AuditID == "" {
		ev = auditv1.Event{
			Level:   auditv1.Level(row.Level),
			AuditID: types.UID(row.AuditID),
			Stage:   auditv1.Stage(row.Stage),
			Verb:    row.Verb,
			User:    authnv1.UserInfo{Username: row.User, Groups: row.UserGroups},
			ObjectRef: &auditv1.ObjectReference{Resource: row.Resource, Namespace: row.Namespace, Name: row.Name,
				APIGroup: row.APIGroup, APIVersion: row.APIVersion, Subresource: row.Subresource},
			UserAgent:                row.UserAgent,
			RequestReceivedTimestamp: metav1.NewMicroTime(row.RequestTime.Add(time.Duration(row.RequestNanos))),
			StageTimestamp:           metav1.NewMicroTime(row.StageTime),
		}
		if row.SourceIP != "" {
			// The indexer joins sourceIPs with commas.
			ev.SourceIPs = strings.Split(row.SourceIP, ",")
		}
		if row.Code != 0 {
			ev.ResponseStatus = &metav1.Status{Code: row.Code}
		}
	}
	ev.APIVersion, ev.Kind = auditv1.SchemeGroupVersion.String(), "Event"
	return ev
}
