package clickhouse

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/fieldselector"
	"github.com/eventpipe/eventpipe/internal/kubeevents/fields"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// historyState is one stored state and its exact last observation.
type historyState struct {
	rec  *eventlog.Record
	last time.Time
}

var (
	histAlpha = scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	histBeta  = scope.Scope{Type: scope.TypeProject, Name: "beta"}
)

// genHistory makes n events over the 10 days before now in two tenants,
// some updated (reason, type and time change), some deleted, with
// sub-second times and ties; the rows include exact duplicates.
func genHistory(t *testing.T, now time.Time, n int) ([]Row, []historyState) {
	t.Helper()
	rng := rand.New(rand.NewSource(7))
	reasons := []string{"BackOff", "FailedMount", "Pulling", "Started", "Killing"}
	kinds := []string{"Pod", "Deployment", "Node"}
	var rows []Row
	var states []historyState
	seq := uint64(0)
	add := func(sc scope.Scope, op eventlog.Op, ev *corev1.Event, last time.Time) {
		seq++
		ev = ev.DeepCopy()
		ev.LastTimestamp = metav1.NewTime(last)
		rec := &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev, Seq: seq}
		row, err := EncodeRow(rec, now)
		require.NoError(t, err)
		rows = append(rows, row)
		if rng.Intn(10) == 0 {
			rows = append(rows, row) // at-least-once: an exact duplicate
		}
		states = append(states, historyState{rec: rec, last: last})
	}
	for i := range n {
		sc := histAlpha
		if i%4 == 3 {
			sc = histBeta
		}
		ns := []string{"prod", "dev", "kube-system"}[rng.Intn(3)]
		last := now.Add(-time.Duration(rng.Int63n(int64(10 * 24 * time.Hour))))
		if i%7 == 0 {
			last = last.Truncate(time.Hour) // ties on the second and nanosecond
		}
		kind := kinds[rng.Intn(len(kinds))]
		typ := corev1.EventTypeNormal
		if rng.Intn(3) == 0 {
			typ = corev1.EventTypeWarning
		}
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("obj-%d.%x", i%50, i), UID: types.UID(fmt.Sprintf("uid-%d", i))},
			InvolvedObject: corev1.ObjectReference{Kind: kind, Namespace: ns, Name: fmt.Sprintf("obj-%d", i%50), APIVersion: "v1"},
			Reason:         reasons[rng.Intn(len(reasons))], Message: "message", Type: typ,
			Source: corev1.EventSource{Component: "kubelet"}, Count: 1,
		}
		if i%5 == 0 {
			ev.Source = corev1.EventSource{}
			ev.ReportingController = "deployment-controller"
		}
		if i%6 == 0 {
			ev.Related = &corev1.ObjectReference{Kind: "Node", Name: "node-1"}
		}
		add(sc, eventlog.OpCreate, ev, last)
		switch rng.Intn(6) {
		case 0, 1: // updated later: a new reason, type and time
			up := ev.DeepCopy()
			up.Reason, up.Type, up.Count = reasons[rng.Intn(len(reasons))], corev1.EventTypeWarning, 2
			later := last.Add(time.Duration(rng.Int63n(int64(3 * 24 * time.Hour))))
			if later.After(now) {
				later = now.Add(-time.Second)
			}
			add(sc, eventlog.OpUpdate, up, later)
		case 2:
			add(sc, eventlog.OpDelete, ev, last)
		}
	}
	return rows, states
}

func fieldValue(ev *corev1.Event, label string) string {
	switch label {
	case fieldselector.LabelRelatedKind, fieldselector.LabelRelatedNamespace, fieldselector.LabelRelatedName:
		if ev.Related == nil {
			return ""
		}
		return map[string]string{fieldselector.LabelRelatedKind: ev.Related.Kind, fieldselector.LabelRelatedNamespace: ev.Related.Namespace,
			fieldselector.LabelRelatedName: ev.Related.Name}[label]
	case fieldselector.LabelMetadataUID:
		return string(ev.UID)
	}
	return fields.Fields(ev)[label]
}

func selectorMatches(reqs []fieldselector.Requirement, ev *corev1.Event) bool {
	for _, r := range reqs {
		v := fieldValue(ev, r.Field)
		in := false
		for _, x := range r.Values {
			in = in || x == v
		}
		if (r.Operator == fieldselector.Equals || r.Operator == fieldselector.In) != in {
			return false
		}
	}
	return true
}

// bruteHistory answers f from the states in memory: the latest state per
// key at f.AtSeq, then the window and the selector, in history order.
func bruteHistory(states []historyState, f HistoryFilter) []historyState {
	latest := map[eventlog.Key]historyState{}
	for _, s := range states {
		if s.rec.Seq > f.AtSeq {
			continue
		}
		if cur, ok := latest[s.rec.Key]; !ok || cur.rec.Seq < s.rec.Seq {
			latest[s.rec.Key] = s
		}
	}
	var out []historyState
	for _, s := range latest {
		k := s.rec.Key
		if s.rec.Op == eventlog.OpDelete || f.Scope != nil && k.Scope != *f.Scope || f.Namespace != nil && k.Namespace != *f.Namespace {
			continue
		}
		if s.last.Before(f.Start) || !s.last.Before(f.End) || !selectorMatches(f.Selector, s.rec.Event) {
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return historyLess(out[i], out[j]) })
	return out
}

func historyLess(a, b historyState) bool {
	if !a.last.Equal(b.last) {
		return a.last.After(b.last)
	}
	ka, kb := a.rec.Key, b.rec.Key
	for _, p := range [][2]string{{ka.Scope.Type, kb.Scope.Type}, {ka.Scope.Name, kb.Scope.Name}, {ka.Namespace, kb.Namespace}} {
		if p[0] != p[1] {
			return p[0] < p[1]
		}
	}
	return ka.Name < kb.Name
}

// historyCases are the filters both server versions are checked with.
func historyCases(t *testing.T, now time.Time, atSeq uint64) map[string]HistoryFilter {
	t.Helper()
	sel := func(s string) []fieldselector.Requirement {
		r, err := fieldselector.Parse(s)
		require.NoError(t, err)
		return r
	}
	prod := "prod"
	return map[string]HistoryFilter{
		"alpha 10d":              {Scope: &histAlpha, Start: now.Add(-10 * 24 * time.Hour), End: now, AtSeq: atSeq},
		"all scopes 3d":          {Start: now.Add(-3 * 24 * time.Hour), End: now.Add(-24 * time.Hour), AtSeq: atSeq},
		"alpha prod warnings":    {Scope: &histAlpha, Namespace: &prod, Start: now.Add(-10 * 24 * time.Hour), End: now, AtSeq: atSeq, Selector: sel("type=Warning")},
		"alpha set forms":        {Scope: &histAlpha, Start: now.Add(-9 * 24 * time.Hour), End: now, AtSeq: atSeq, Selector: sel("reason in (BackOff,FailedMount),regarding.kind notin (Node)")},
		"beta source fallback":   {Scope: &histBeta, Start: now.Add(-10 * 24 * time.Hour), End: now, AtSeq: atSeq, Selector: sel("source=deployment-controller")},
		"related":                {Start: now.Add(-10 * 24 * time.Hour), End: now, AtSeq: atSeq, Selector: sel("related.kind=Node,type!=Normal")},
		"half the history":       {Scope: &histAlpha, Start: now.Add(-10 * 24 * time.Hour), End: now, AtSeq: atSeq / 2},
		"sub-second window ends": {Scope: &histAlpha, Start: now.Add(-5*24*time.Hour - 123456789), End: now.Add(-2*24*time.Hour + 987654321), AtSeq: atSeq},
	}
}

// bruteFacets counts facet values and histogram buckets in memory.
func bruteFacets(matched []historyState, f HistoryFilter, bucket time.Duration) (map[string]map[string]uint64, []uint64) {
	facets := map[string]map[string]uint64{}
	buckets := make([]uint64, BucketCount(f.Start, f.End, bucket))
	for _, s := range matched {
		ev := s.rec.Event
		src := ev.Source.Component
		if src == "" {
			src = ev.ReportingController
		}
		vals := map[string]string{
			"regarding.kind": ev.InvolvedObject.Kind, "regarding.namespace": ev.InvolvedObject.Namespace, "namespace": ev.Namespace,
			"reason": ev.Reason, "type": ev.Type, "source.component": src,
			"related.kind": fieldValue(ev, "related.kind"), "related.namespace": fieldValue(ev, "related.namespace"),
		}
		for k, v := range vals {
			if v == "" {
				continue
			}
			if facets[k] == nil {
				facets[k] = map[string]uint64{}
			}
			facets[k][v]++
		}
		buckets[s.last.Truncate(time.Second).Sub(f.Start.Truncate(time.Second))/bucket]++
	}
	return facets, buckets
}

// topFacet returns the limit most frequent values, ties by value.
func topFacet(m map[string]uint64, limit int) []FacetValue {
	var out []FacetValue
	for v, n := range m {
		out = append(out, FacetValue{Value: v, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}
