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
	"k8s.io/apiserver/pkg/storage"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/tailwatch"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// tooLargeRVWait is how long a list or watch for a resourceVersion the
// writer has not reached yet waits before it gives up, as kube-apiserver's
// watch cache does.
const tooLargeRVWait = 3 * time.Second

// continueToken is the list continuation. It is a kube-apiserver token
// (base64 of JSON with the version, the list's resourceVersion and the key
// to start after, checked by storage.DecodeContinue), plus the namespace
// and scope of that key, which kube's key path would hold.
type continueToken struct {
	APIVersion string `json:"v"`
	RV         int64  `json:"rv"`
	Start      string `json:"start"`
	Namespace  string `json:"ns"`
	ScopeType  string `json:"st"`
	ScopeName  string `json:"sn"`
	// Offset is how many items the pages before held, for
	// remainingItemCount.
	Offset int64 `json:"n,omitempty"`
}

const continueVersion = "meta.k8s.io/v1"

func encodeContinue(rv uint64, last *eventlog.Record, offset int64) string {
	b, _ := json.Marshal(continueToken{APIVersion: continueVersion, RV: int64(rv), Start: last.Key.Name, Namespace: last.Key.Namespace,
		ScopeType: last.Key.Scope.Type, ScopeName: last.Key.Scope.Name, Offset: offset})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeContinue reads a continue token. A token kube-apiserver would
// refuse is refused with its text; so is one that is kube-shaped but was
// not made by eventpipe (no position to resume from).
func decodeContinue(s string) (*continueToken, error) {
	invalid := func(err error) error {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid continue token: %v", err))
	}
	if _, _, err := storage.DecodeContinue(s, "/"); err != nil {
		return nil, invalid(err)
	}
	b, _ := base64.RawURLEncoding.DecodeString(s) // checked by DecodeContinue
	var t continueToken
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, invalid(fmt.Errorf("%w: %v", storage.ErrGenericInvalidKey, err))
	}
	if t.RV < 0 {
		// kube reads a negative resourceVersion as "the latest"; eventpipe
		// never makes such tokens and cannot resume one consistently.
		return nil, invalid(storage.ErrInvalidStartRV)
	}
	return &t, nil
}

// expiredContinueMsg is kube-apiserver's text for a continue token older
// than what storage still holds.
const expiredContinueMsg = "The provided continue parameter is too old to display a consistent list result. " +
	"You can start a new list without the continue parameter, or use the continue token in this response to retrieve " +
	"the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that " +
	"were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."

// listAt resolves a list's resourceVersion parameters to the sequence the
// answer is given at.
func (r *REST) listAt(ctx context.Context, opts *metainternalversion.ListOptions) (uint64, error) {
	w := r.wm.Load()
	if opts.ResourceVersion == "" || opts.ResourceVersion == "0" {
		return w, nil
	}
	rv, err := tailwatch.ParseResourceVersion(opts.ResourceVersion)
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
		// kube-apiserver's answer when etcd has not reached rv: 504 with
		// the ResourceVersionTooLarge cause, no retry delay.
		return storage.NewTooLargeResourceVersionError(rv, r.wm.Load(), 0)
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
	if !q.labels.Matches(labels.Set(ev.Labels)) {
		return false
	}
	// Without a field selector every event matches; building the field set
	// was a tenth of a watch's work per state.
	return q.fields.Empty() || q.fields.Matches(eventFields(ev))
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
	var offset int64
	if opts.Continue != "" {
		tok, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, err
		}
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			return nil, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		first, _, err := r.log.Bounds(ctx)
		if err != nil {
			return nil, unavailable(err)
		}
		if uint64(tok.RV)+1 < first {
			return nil, apierrors.NewResourceExpired(expiredContinueMsg)
		}
		at, offset = uint64(tok.RV), tok.Offset
		after = &chstore.Cursor{Namespace: tok.Namespace, Name: tok.Start, Scope: scope.Scope{Type: tok.ScopeType, Name: tok.ScopeName}}
		if sc != nil && after.Scope != *sc {
			// A tenant's pages never leave its own scope, so a token
			// positioned in another one was issued to someone else.
			return nil, apierrors.NewBadRequest("continue key is not valid: it was issued to another tenant")
		}
	} else if at, err = r.listAt(ctx, opts); err != nil {
		return nil, err
	}
	ns := genericapirequest.NamespaceValue(ctx)
	items, next, err := r.listPage(ctx, sc, ns, newQuery(opts), at, after, opts.Limit)
	if err != nil {
		return nil, err
	}
	lm := metav1.ListMeta{ResourceVersion: strconv.FormatUint(at, 10)}
	if next != nil {
		offset += int64(len(items))
		lm.Continue = encodeContinue(at, next, offset)
		if selectsEverything(opts) {
			if lm.RemainingItemCount, err = r.remaining(ctx, sc, ns, at, offset); err != nil {
				return nil, err
			}
		}
	}
	return r.v.list(items, lm), nil
}

// selectsEverything reports whether a list has neither a label nor a field
// selector: kube-apiserver counts the remaining items of such lists only.
func selectsEverything(opts *metainternalversion.ListOptions) bool {
	return (opts.LabelSelector == nil || opts.LabelSelector.Empty()) && (opts.FieldSelector == nil || opts.FieldSelector.Empty())
}

// remaining estimates a truncated list's remainingItemCount: the events of
// the list at resourceVersion at less the offset items the pages so far
// held. The window moves between pages, so it is an estimate, as the API
// allows; it is at least 1, since more items are known to follow.
func (r *REST) remaining(ctx context.Context, sc *scope.Scope, ns string, at uint64, offset int64) (*int64, error) {
	n, err := r.index.CountLatest(ctx, r.latestFilter(sc, ns, at))
	if err != nil {
		return nil, unavailable(err)
	}
	rest := max(int64(n)-offset, 1)
	return &rest, nil
}

// latestFilter is what a list of namespace ns (all when empty) at
// resourceVersion at reads: the latest states of events last observed
// within the window.
func (r *REST) latestFilter(sc *scope.Scope, ns string, at uint64) chstore.LatestFilter {
	f := chstore.LatestFilter{Scope: sc, Since: r.now().Add(-r.opts.Window), AtSeq: at}
	if ns != metav1.NamespaceAll {
		f.Namespace = &ns
	}
	return f
}

// listPage reads up to limit matching events (all when limit is 0) after
// the cursor, and returns the last record read when more may follow.
func (r *REST) listPage(ctx context.Context, sc *scope.Scope, ns string, q query, at uint64, after *chstore.Cursor, limit int64) ([]corev1.Event, *eventlog.Record, error) {
	if at == 0 {
		// Sequences start at 1: nothing is committed yet. (The index reads
		// AtSeq 0 as "no bound", which would leak states above the list's
		// resourceVersion.)
		return nil, nil, nil
	}
	lq := chstore.ListQuery{LatestFilter: r.latestFilter(sc, ns, at), Conds: q.conds, After: after}
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
