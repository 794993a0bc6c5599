package event

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/storage"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/listquery"
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
// answer is given at, as kube-apiserver resolves them against etcd:
//
//   - none: a consistent read, at the log's newest sequence when the request
//     arrived, so it reflects every write acknowledged before it;
//   - "0" (any): the writer's watermark, the cheapest answer, as
//     kube-apiserver answers from its watch cache;
//   - rv with NotOlderThan (or no match): the log's newest sequence, as for
//     no resourceVersion (kube-apiserver's watch cache, which answers these,
//     trails etcd by milliseconds), once the log has reached rv; a larger rv
//     waits briefly for the writer, as for a resourceVersion etcd has not
//     reached;
//   - rv with Exact: rv itself, while the log still holds what follows it.
func (r *REST) listAt(ctx context.Context, opts *metainternalversion.ListOptions) (uint64, error) {
	if opts.ResourceVersion == "" {
		return r.head(ctx)
	}
	if opts.ResourceVersion == "0" {
		return r.wm.Load(), nil
	}
	rv, err := tailwatch.ParseResourceVersion(opts.ResourceVersion)
	if err != nil {
		return 0, err
	}
	exact := opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact
	first, last, err := r.log.Bounds(ctx)
	if err != nil {
		return 0, unavailable(err)
	}
	if rv > last {
		if err := r.waitForRV(ctx, rv); err != nil {
			return 0, err
		}
		last = max(last, r.wm.Load())
	}
	if exact {
		if rv < first-1 {
			return 0, apierrors.NewResourceExpired("The resourceVersion for the provided list is too old.")
		}
		return rv, nil
	}
	return last, nil
}

// head is the sequence a consistent read answers at: the newest the log
// holds when asked (or the watermark, should that be ahead).
func (r *REST) head(ctx context.Context) (uint64, error) {
	_, last, err := r.log.Bounds(ctx)
	if err != nil {
		return 0, unavailable(err)
	}
	return max(last, r.wm.Load()), nil
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

// snapshot is the view a list reads: the latest state of every event as of
// sequence at. The index holds the states up to base (the writer's
// watermark when it is behind at); the log's states after it, up to at,
// replace what the index says of their events.
type snapshot struct {
	base uint64
	// overlay is each event's newest state in (base, at], deletes included.
	overlay map[eventlog.Key]*eventlog.Record
	// live are overlay's states that are not deletes, in key order.
	live []*eventlog.Record
	// counted is how many of overlay's events had a live state at base
	// (their first state after it is not a create): the index counts them.
	counted int64
}

// snapshot reads what the log holds after the watermark, up to at, for
// the events of sc in namespace ns (all when empty).
func (r *REST) snapshot(ctx context.Context, sc *scope.Scope, ns string, at uint64) (*snapshot, error) {
	s := &snapshot{base: min(at, r.wm.Load())}
	if s.base == at {
		return s, nil
	}
	var nsp *string
	if ns != metav1.NamespaceAll {
		nsp = &ns
	}
	recs, err := r.log.Range(ctx, eventlog.FilterSubject(sc, nsp), s.base, at)
	if errors.Is(err, eventlog.ErrRangeTooLong) {
		// The writer is far behind: more states than a request should
		// read. Wait briefly for it; never answer stale.
		if err := r.waitForCommit(ctx, at); err != nil {
			return nil, err
		}
		s.base = at
		return s, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	s.overlay = make(map[eventlog.Key]*eventlog.Record, len(recs))
	for _, rec := range recs {
		if _, seen := s.overlay[rec.Key]; !seen && rec.Op != eventlog.OpCreate {
			s.counted++
		}
		s.overlay[rec.Key] = rec
	}
	for _, rec := range s.overlay {
		if !rec.Op.Gone() {
			s.live = append(s.live, rec)
		}
	}
	sort.Slice(s.live, func(i, j int) bool { return keyLess(s.live[i].Key, s.live[j].Key) })
	return s, nil
}

// waitForCommit waits, briefly, for the writer to commit up to at, and
// otherwise answers 504 with Retry-After.
func (r *REST) waitForCommit(ctx context.Context, at uint64) error {
	wctx, cancel := context.WithTimeout(ctx, tooLargeRVWait)
	defer cancel()
	if err := r.wm.WaitFor(wctx, at); err != nil {
		return apierrors.NewTimeoutError(fmt.Sprintf("the index is %d states behind the log; a consistent list cannot be served now",
			at-min(at, r.wm.Load())), 1)
	}
	return nil
}

// keyLess orders keys as lists do: by namespace, name and scope (the
// index's ORDER BY).
func keyLess(a, b eventlog.Key) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	if a.Scope.Type != b.Scope.Type {
		return a.Scope.Type < b.Scope.Type
	}
	return a.Scope.Name < b.Scope.Name
}

// query is what a list or a watch selects.
type query struct{ listquery.Query }

func newQuery(opts *metainternalversion.ListOptions) query { return query{listquery.New(opts)} }

func (q query) matches(ev *corev1.Event) bool {
	return q.Matches(ev.Labels, func() fields.Set { return eventFields(ev) })
}

// List implements rest.Lister: the latest state of every event whose last
// observation is within the window, as of the sequence its resourceVersion
// parameters resolve to (see listAt), ordered by namespace, name and scope.
// Every page of a list, continued by its token, reads the same snapshot.
func (r *REST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	req, err := listquery.Begin(ctx, opts, nil, r.scopes)
	if err != nil {
		return nil, err
	}
	opts, sc, ns := req.Opts, req.Scope, req.Namespace
	var at uint64
	var after *eventlog.Key
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
		after = &eventlog.Key{Namespace: tok.Namespace, Name: tok.Start, Scope: scope.Scope{Type: tok.ScopeType, Name: tok.ScopeName}}
		if sc != nil && after.Scope != *sc {
			// A tenant's pages never leave its own scope, so a token
			// positioned in another one was issued to someone else.
			return nil, apierrors.NewBadRequest("continue key is not valid: it was issued to another tenant")
		}
	} else if at, err = r.listAt(ctx, opts); err != nil {
		return nil, err
	}
	snap, err := r.snapshot(ctx, sc, ns, at)
	if err != nil {
		return nil, err
	}
	items, next, err := r.listPage(ctx, sc, ns, query{req.Query}, snap, after, opts.Limit)
	if err != nil {
		return nil, err
	}
	lm := metav1.ListMeta{ResourceVersion: strconv.FormatUint(at, 10)}
	if next != nil {
		offset += int64(len(items))
		lm.Continue = encodeContinue(at, next, offset)
		if selectsEverything(opts) {
			if lm.RemainingItemCount, err = r.remaining(ctx, sc, ns, snap, offset); err != nil {
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
// the snapshot less the offset items the pages so far held. The window
// moves between pages, so it is an estimate, as the API allows; it is at
// least 1, since more items are known to follow.
func (r *REST) remaining(ctx context.Context, sc *scope.Scope, ns string, snap *snapshot, offset int64) (*int64, error) {
	var n uint64
	if snap.base > 0 {
		var err error
		if n, err = r.index.CountLatest(ctx, r.latestFilter(sc, ns, snap.base)); err != nil {
			return nil, unavailable(err)
		}
	}
	since := r.latestFilter(sc, ns, snap.base).Since
	total := int64(n) - snap.counted
	for _, rec := range snap.live {
		if r.inWindow(rec, since) {
			total++
		}
	}
	rest := max(total-offset, 1)
	return &rest, nil
}

// latestFilter is what a list of namespace ns (all when empty) at
// resourceVersion at reads: the latest states of events last observed
// within the window.
func (r *REST) latestFilter(sc *scope.Scope, ns string, at uint64) LatestFilter {
	f := LatestFilter{Scope: sc, Since: r.now().Add(-r.opts.Window), AtSeq: at}
	if ns != metav1.NamespaceAll {
		f.Namespace = &ns
	}
	return f
}

// inWindow reports whether rec was last observed at or after since, as the
// index decides it (whole seconds; see chstore.LastObserved).
func (r *REST) inWindow(rec *eventlog.Record, since time.Time) bool {
	return chstore.LastObserved(rec.Event, r.now()).Unix() >= since.Unix()
}

// listPage reads up to limit matching events of snap (all when limit is 0)
// after the cursor, and returns the last record read when more may follow.
// It merges two sorted sources: the index's latest states up to snap.base,
// except those of events snap's overlay has a newer state of, and the
// overlay's live states.
func (r *REST) listPage(ctx context.Context, sc *scope.Scope, ns string, q query, snap *snapshot, after *eventlog.Key, limit int64) ([]corev1.Event, *eventlog.Record, error) {
	lf := r.latestFilter(sc, ns, snap.base)
	var fromLog []*eventlog.Record
	for _, rec := range snap.live {
		if (after == nil || keyLess(*after, rec.Key)) && r.inWindow(rec, lf.Since) && q.matches(rec.Event) {
			fromLog = append(fromLog, rec)
		}
	}
	idx := &indexPages{index: r.index, lq: ListQuery{LatestFilter: lf, Conds: q.Conds, After: after}, done: snap.base == 0,
		skip: func(rec *eventlog.Record) bool { return snap.overlay[rec.Key] != nil || !q.matches(rec.Event) }}
	// Ask for one more than the page so we know whether another follows;
	// in-memory filters may drop rows, so keep reading until the page fills.
	if limit > 0 {
		idx.chunk = int(limit) + 1
	}
	var out []corev1.Event
	var lastOut *eventlog.Record
	// add appends rec to the page, or reports that the page is full: a
	// match beyond it, so the next page starts after the last item returned
	// (what lies between does not match).
	add := func(rec *eventlog.Record, shared bool) bool {
		if limit > 0 && int64(len(out)) == limit {
			return true
		}
		ev := rec.Event
		if shared {
			ev = ev.DeepCopy() // the log's records are read-only
		}
		out = append(out, *ev)
		lastOut = rec
		return false
	}
	i := 0
	for {
		rec, err := idx.next(ctx)
		if err != nil {
			return nil, nil, err
		}
		if rec == nil {
			break
		}
		for ; i < len(fromLog) && keyLess(fromLog[i].Key, rec.Key); i++ {
			if add(fromLog[i], true) {
				return out, lastOut, nil
			}
		}
		if add(rec, false) {
			return out, lastOut, nil
		}
	}
	for ; i < len(fromLog); i++ {
		if add(fromLog[i], true) {
			return out, lastOut, nil
		}
	}
	return out, nil, nil
}

// indexPages reads a list query's records from the index in key order, a
// chunk at a time (all at once when chunk is 0), leaving out those skip
// says to.
type indexPages struct {
	index Index
	lq    ListQuery
	chunk int
	skip  func(*eventlog.Record) bool
	buf   []*eventlog.Record
	done  bool
}

// next returns the next record, or nil after the last.
func (p *indexPages) next(ctx context.Context) (*eventlog.Record, error) {
	for {
		for len(p.buf) > 0 {
			rec := p.buf[0]
			p.buf = p.buf[1:]
			if !p.skip(rec) {
				return rec, nil
			}
		}
		if p.done {
			return nil, nil
		}
		p.lq.Limit = p.chunk
		recs, err := p.index.List(ctx, p.lq)
		if err != nil {
			return nil, unavailable(err)
		}
		if p.chunk == 0 || len(recs) < p.chunk {
			p.done = true
		}
		if len(recs) > 0 {
			last := recs[len(recs)-1]
			key := last.Key
			p.lq.After = &key
		}
		p.buf = recs
	}
}
