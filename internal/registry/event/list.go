package event

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// tooLargeRVWait is how long a list or watch for a resourceVersion the
// writer has not reached yet waits before it gives up, as kube-apiserver's
// watch cache does.
const tooLargeRVWait = 3 * time.Second

// continueToken is the list continuation, shaped like kube-apiserver's
// (base64 of JSON with the version, the list's resourceVersion and the key
// to start after), plus the scope of that key.
type continueToken struct {
	APIVersion string `json:"v"`
	RV         uint64 `json:"rv"`
	Start      string `json:"start"`
	Namespace  string `json:"ns"`
	ScopeType  string `json:"st"`
	ScopeName  string `json:"sn"`
}

const continueVersion = "meta.k8s.io/v1"

func encodeContinue(rv uint64, last *eventlog.Record) string {
	b, _ := json.Marshal(continueToken{APIVersion: continueVersion, RV: rv, Start: last.Key.Name, Namespace: last.Key.Namespace,
		ScopeType: last.Key.Scope.Type, ScopeName: last.Key.Scope.Name})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (*continueToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("continue key is not valid: %v", err))
	}
	var t continueToken
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("continue key is not valid: %v", err))
	}
	if t.APIVersion != continueVersion {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("continue key is not valid: server does not recognize this encoding %q", t.APIVersion))
	}
	if t.RV == 0 || t.Start == "" {
		return nil, apierrors.NewBadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
	}
	return &t, nil
}

// expiredContinueMsg is kube-apiserver's text for a continue token older
// than what storage still holds.
const expiredContinueMsg = "The provided continue parameter is too old to display a consistent list result. " +
	"You can start a new list without the continue parameter, or use the continue token in this response to retrieve " +
	"the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that " +
	"were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."

// parseRV reads a resourceVersion parameter.
func parseRV(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %s", s))
	}
	return v, nil
}

// listAt resolves a list's resourceVersion parameters to the sequence the
// answer is given at.
func (r *REST) listAt(ctx context.Context, opts *metainternalversion.ListOptions) (uint64, error) {
	w := r.wm.Load()
	if opts.ResourceVersion == "" || opts.ResourceVersion == "0" {
		return w, nil
	}
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return 0, err
	}
	if rv > w {
		if err := r.waitForRV(ctx, rv); err != nil {
			return 0, err
		}
		w = r.wm.Load()
	}
	if opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact {
		first, _, err := r.log.Bounds(ctx)
		if err != nil {
			return 0, unavailable(err)
		}
		if rv < first-1 {
			return 0, apierrors.NewResourceExpired("The resourceVersion for the provided list is too old.")
		}
		return rv, nil
	}
	return w, nil
}

// waitForRV waits, briefly, for the watermark to reach rv.
func (r *REST) waitForRV(ctx context.Context, rv uint64) error {
	wctx, cancel := context.WithTimeout(ctx, tooLargeRVWait)
	defer cancel()
	if err := r.wm.WaitFor(wctx, rv); err != nil {
		se := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", rv, r.wm.Load()), 1)
		se.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
		return se
	}
	return nil
}

// query translates selectors into what the index can filter; label
// selectors and fields it cannot express are applied afterwards in memory.
type query struct {
	conds  []chstore.FieldCond
	fields fields.Selector
	labels labels.Selector
}

func newQuery(opts *metainternalversion.ListOptions) query {
	q := query{fields: fields.Everything(), labels: labels.Everything()}
	if opts.FieldSelector != nil {
		q.fields = opts.FieldSelector
		for _, req := range opts.FieldSelector.Requirements() {
			if _, ok := chstore.FieldColumns[req.Field]; !ok {
				continue
			}
			switch req.Operator {
			case selection.Equals, selection.DoubleEquals:
				q.conds = append(q.conds, chstore.FieldCond{Field: req.Field, Value: req.Value})
			case selection.NotEquals:
				q.conds = append(q.conds, chstore.FieldCond{Field: req.Field, Not: true, Value: req.Value})
			}
		}
	}
	if opts.LabelSelector != nil {
		q.labels = opts.LabelSelector
	}
	return q
}

func (q query) matches(ev *corev1.Event) bool {
	return q.labels.Matches(labels.Set(ev.Labels)) && q.fields.Matches(eventFields(ev))
}

// List implements rest.Lister: the latest state of every event whose last
// observation is within the window, as of the writer's watermark (or the
// resourceVersion asked for), ordered by namespace and name.
func (r *REST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	if opts == nil {
		opts = &metainternalversion.ListOptions{}
	}
	sc, err := r.scopes.ReadScope(ctx)
	if err != nil {
		return nil, err
	}
	var at uint64
	var after *chstore.Cursor
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
			return nil, apierrors.NewResourceExpired(expiredContinueMsg)
		}
		at = tok.RV
		after = &chstore.Cursor{Namespace: tok.Namespace, Name: tok.Start, Scope: scope.Scope{Type: tok.ScopeType, Name: tok.ScopeName}}
	} else if at, err = r.listAt(ctx, opts); err != nil {
		return nil, err
	}
	items, next, err := r.listPage(ctx, sc, genericapirequest.NamespaceValue(ctx), newQuery(opts), at, after, opts.Limit)
	if err != nil {
		return nil, err
	}
	lm := metav1.ListMeta{ResourceVersion: strconv.FormatUint(at, 10)}
	if next != nil {
		lm.Continue = encodeContinue(at, next)
	}
	return r.v.list(items, lm), nil
}

// listPage reads up to limit matching events (all when limit is 0) after
// the cursor, and returns the last record read when more may follow.
func (r *REST) listPage(ctx context.Context, sc *scope.Scope, ns string, q query, at uint64, after *chstore.Cursor, limit int64) ([]corev1.Event, *eventlog.Record, error) {
	lq := chstore.ListQuery{
		LatestFilter: chstore.LatestFilter{Scope: sc, Since: r.now().Add(-r.opts.Window), AtSeq: at},
		Conds:        q.conds, After: after,
	}
	if ns != metav1.NamespaceAll {
		lq.Namespace = &ns
	}
	// Ask for one more than the page so we know whether another follows;
	// in-memory filters may drop rows, so keep reading until the page fills.
	chunk := 0
	if limit > 0 {
		chunk = int(limit) + 1
	}
	var out []corev1.Event
	var lastOut *eventlog.Record
	for {
		lq.Limit = chunk
		recs, err := r.index.List(ctx, lq)
		if err != nil {
			return nil, nil, unavailable(err)
		}
		for _, rec := range recs {
			if !q.matches(rec.Event) {
				continue
			}
			if limit > 0 && int64(len(out)) == limit {
				// A match beyond the page: the next page starts after the
				// last item returned (what lies between does not match).
				return out, lastOut, nil
			}
			out = append(out, *rec.Event)
			lastOut = rec
		}
		if chunk == 0 || len(recs) < chunk {
			return out, nil, nil
		}
		last := recs[len(recs)-1]
		lq.After = &chstore.Cursor{Namespace: last.Key.Namespace, Name: last.Key.Name, Scope: last.Key.Scope}
	}
}
