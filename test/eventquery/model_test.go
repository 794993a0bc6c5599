package eventquery

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/fieldselector"
	"github.com/eventpipe/eventpipe/internal/kubeevents/fields"
)

// model is what the test wrote: the latest state of every live event.
type model map[string]*corev1.Event // by namespace/name

func key(ev *corev1.Event) string { return ev.Namespace + "/" + ev.Name }

// seedEvents returns n events spread over the days before now, with every
// field the selectors and facets look at varied.
func seedEvents(now time.Time, n int, prefix string) []*corev1.Event {
	reasons := []string{"BackOff", "FailedMount", "Pulling", "Started", "ScalingReplicaSet"}
	var out []*corev1.Event
	for i := range n {
		ns := []string{"prod", "dev", "kube-system"}[i%3]
		last := now.Add(-time.Duration(i)*97*time.Minute - 17*time.Minute).Truncate(time.Second)
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%02d.%x", prefix, i, 0x1800000000+i)},
			InvolvedObject: corev1.ObjectReference{Kind: []string{"Pod", "Deployment", "Node"}[i%3], Namespace: ns, Name: fmt.Sprintf("obj-%d", i%7), APIVersion: "v1"},
			Reason:         reasons[i%len(reasons)], Message: fmt.Sprintf("message %d", i),
			Type:           []string{corev1.EventTypeNormal, corev1.EventTypeWarning}[i%2],
			Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
			FirstTimestamp: metav1.NewTime(last.Add(-time.Minute)), LastTimestamp: metav1.NewTime(last), Count: 1,
		}
		if i%4 == 0 {
			ev.Source = corev1.EventSource{}
			ev.ReportingController, ev.ReportingInstance = "deployment-controller", "controller-0"
		}
		if i%5 == 0 {
			ev.Related = &corev1.ObjectReference{Kind: "Node", Name: "node-1", Namespace: ""}
		}
		if i%6 == 0 {
			ev.Related = &corev1.ObjectReference{Kind: "ReplicaSet", Name: "web-1", Namespace: ns}
		}
		out = append(out, ev)
	}
	return out
}

func lastSeen(ev *corev1.Event) time.Time { return ev.LastTimestamp.Time }

func fieldValue(ev *corev1.Event, label string) string {
	if ev.Related != nil {
		switch label {
		case fieldselector.LabelRelatedKind:
			return ev.Related.Kind
		case fieldselector.LabelRelatedNamespace:
			return ev.Related.Namespace
		case fieldselector.LabelRelatedName:
			return ev.Related.Name
		}
	}
	if label == fieldselector.LabelMetadataUID {
		return string(ev.UID)
	}
	return fields.Fields(ev)[label]
}

// query answers an EventQuery over m in memory, in the API's order.
func (m model) query(start, end time.Time, ns, selector string) []*corev1.Event {
	reqs, err := fieldselector.Parse(selector)
	if err != nil {
		panic(err)
	}
	var out []*corev1.Event
	for _, ev := range m {
		t := lastSeen(ev)
		if t.Before(start) || !t.Before(end) || ns != "" && ev.Namespace != ns {
			continue
		}
		ok := true
		for _, r := range reqs {
			v := fieldValue(ev, r.Field)
			in := false
			for _, x := range r.Values {
				in = in || v == x
			}
			ok = ok && in == (r.Operator == fieldselector.Equals || r.Operator == fieldselector.In)
		}
		if ok {
			out = append(out, ev)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := lastSeen(out[i]), lastSeen(out[j]); !a.Equal(b) {
			return a.After(b)
		}
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func names(evs []*corev1.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = key(ev)
	}
	return out
}

// facetValues is the brute-force value of each facet for ev.
func facetValues(ev *corev1.Event) map[string]string {
	src := ev.Source.Component
	if src == "" {
		src = ev.ReportingController
	}
	out := map[string]string{"regarding.kind": ev.InvolvedObject.Kind, "regarding.namespace": ev.InvolvedObject.Namespace,
		"namespace": ev.Namespace, "reason": ev.Reason, "type": ev.Type, "source.component": src}
	if ev.Related != nil {
		out["related.kind"], out["related.namespace"] = ev.Related.Kind, ev.Related.Namespace
	}
	return out
}
