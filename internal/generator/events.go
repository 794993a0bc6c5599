package generator

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// reporter is the component that records an event.
type reporter struct {
	// component is source.component of legacy events and reportingController
	// of both styles.
	component string
	// host is source.host; only the kubelet sets it.
	host string
	// instance is reportingInstance: client-go's legacy recorder copies
	// source.host (empty for controllers), the events.k8s.io recorder uses
	// "<controller>-<hostname>".
	instance string
	// manager is the field manager the API server derives from the
	// component's user agent; it shows in managedFields.
	manager string
	// modern components write through events.k8s.io/v1
	// (k8s.io/client-go/tools/events) instead of core/v1.
	modern bool
}

func kubelet(n *node) reporter {
	return reporter{component: "kubelet", host: n.obj.name, instance: n.obj.name, manager: "kubelet"}
}

func controller(name string) reporter {
	return reporter{component: name, manager: "kube-controller-manager"}
}

// kubeletNodeRef is the reference the kubelet (and kube-proxy) puts on Node
// events: built by hand, so it has no apiVersion nor resourceVersion, and its
// uid is the node's name, not the Node object's uid.
func kubeletNodeRef(n *node) object {
	return object{kind: "Node", name: n.obj.name, uid: n.obj.name}
}

// evSpec is an event about to be recorded.
type evSpec struct {
	obj       object
	fieldPath string
	typ       string
	reason    string
	message   string
	action    string // events.k8s.io style only
	by        reporter
}

// liveEvent is an event still stored in the simulated cluster, which may be
// updated (repeated) or deleted (expired).
type liveEvent struct {
	tn      *tenant
	ev      *corev1.Event
	modern  bool
	last    time.Time
	budget  int  // repeats left
	pod     *pod // the pod it is about, if any: repeats stop once the pod is gone
	deleted bool
}

// state is one output of the generator.
type state struct {
	op eventlog.Op
	sc scope.Scope
	ev *corev1.Event
}

// managedFields sets, as the API server records them for each writer.
var (
	fieldsLegacyKubelet = `{"f:count":{},"f:firstTimestamp":{},"f:involvedObject":{},"f:lastTimestamp":{},"f:message":{},"f:reason":{},"f:reportingComponent":{},"f:reportingInstance":{},"f:source":{"f:component":{},"f:host":{}},"f:type":{}}`
	fieldsLegacy        = `{"f:count":{},"f:firstTimestamp":{},"f:involvedObject":{},"f:lastTimestamp":{},"f:message":{},"f:reason":{},"f:reportingComponent":{},"f:source":{"f:component":{}},"f:type":{}}`
)

// fieldsModernRelated is the field set of an events.k8s.io event with a
// related object (the scheduler's Preempted).
var fieldsModernRelated = `{"f:action":{},"f:eventTime":{},"f:note":{},"f:reason":{},"f:regarding":{},"f:related":{},"f:reportingController":{},"f:reportingInstance":{},"f:type":{}}`

func fieldsModern(note, series bool) string {
	s := `{"f:action":{},"f:eventTime":{},`
	if note {
		s += `"f:note":{},`
	}
	s += `"f:reason":{},"f:regarding":{},"f:reportingController":{},"f:reportingInstance":{},`
	if series {
		s += `"f:series":{".":{},"f:count":{},"f:lastObservedTime":{}},`
	}
	return s + `"f:type":{}}`
}

func seconds(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

func micro(t time.Time) metav1.MicroTime { return metav1.NewMicroTime(t.Truncate(time.Microsecond)) }

// record creates the event s at the current time. p, when not nil, is the
// pod the event is about; budget > 0 makes the event repeat that many times
// at most.
func (g *Generator) record(tn *tenant, s evSpec, p *pod, budget int) (state, *liveEvent) {
	t := g.t
	ref := corev1.ObjectReference{
		Kind:       s.obj.kind,
		Namespace:  s.obj.namespace,
		Name:       s.obj.name,
		UID:        types.UID(s.obj.uid),
		APIVersion: s.obj.apiVersion,
		FieldPath:  s.fieldPath,
	}
	// Other writers move the cluster's revision on between two events.
	tn.rv += uint64(1 + g.rng.IntN(60))
	if s.obj.kind != "Node" {
		// Node references are built by hand by the kubelet and node
		// controller and carry no resourceVersion; the others come from
		// reference.GetReference on a live object.
		ref.ResourceVersion = strconv.FormatUint(tn.rv, 10)
	}
	ns := s.obj.namespace
	if ns == "" {
		// Both client-go recorders put events about cluster-scoped objects
		// in "default".
		ns = metav1.NamespaceDefault
	}
	mt := seconds(t)
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			// client-go: fmt.Sprintf("%v.%x", ref.Name, t.UnixNano()).
			Name:              fmt.Sprintf("%v.%x", s.obj.name, t.UnixNano()),
			Namespace:         ns,
			UID:               types.UID(g.uuid()),
			CreationTimestamp: mt,
		},
		InvolvedObject:      ref,
		Reason:              s.reason,
		Message:             s.message,
		Type:                s.typ,
		ReportingController: s.by.component,
		ReportingInstance:   s.by.instance,
	}
	mf := metav1.ManagedFieldsEntry{
		Manager:    s.by.manager,
		Operation:  metav1.ManagedFieldsOperationUpdate,
		Time:       &mt,
		FieldsType: "FieldsV1",
	}
	if s.by.modern {
		ev.EventTime = micro(t)
		ev.Action = s.action
		mf.APIVersion = "events.k8s.io/v1"
		mf.FieldsV1 = metav1.NewFieldsV1(fieldsModern(s.message != "", false))
	} else {
		ev.Source = corev1.EventSource{Component: s.by.component, Host: s.by.host}
		ev.FirstTimestamp = mt
		ev.LastTimestamp = mt
		ev.Count = 1
		mf.APIVersion = "v1"
		if s.by.host != "" {
			mf.FieldsV1 = metav1.NewFieldsV1(fieldsLegacyKubelet)
		} else {
			mf.FieldsV1 = metav1.NewFieldsV1(fieldsLegacy)
		}
	}
	ev.ManagedFields = []metav1.ManagedFieldsEntry{mf}

	le := &liveEvent{tn: tn, ev: ev, modern: s.by.modern, last: t, budget: budget, pod: p}
	g.live.push(le)
	if budget > 0 {
		g.addRepeater(le)
	}
	return state{op: eventlog.OpCreate, sc: tn.sc, ev: ev}, le
}

// repeatable reports whether le can be updated now.
func (g *Generator) repeatable(le *liveEvent) bool {
	return le != nil && !le.deleted && (le.pod == nil || !le.pod.gone) && !le.last.After(g.t)
}

// bump records one more occurrence of le, as the recorders' correlators do:
// legacy events get count+1 and a new lastTimestamp; events.k8s.io events
// start a series at count 2 and afterwards report it on their heartbeat,
// by which time several occurrences have usually piled up.
func (g *Generator) bump(le *liveEvent) state {
	t := g.t
	ev := le.ev.DeepCopy()
	mt := seconds(t)
	if le.modern {
		if ev.Series == nil {
			ev.Series = &corev1.EventSeries{Count: 2}
			ev.ManagedFields[0].FieldsV1 = metav1.NewFieldsV1(fieldsModern(ev.Message != "", true))
		} else {
			ev.Series.Count += int32(between(g.rng, 1, 12))
		}
		ev.Series.LastObservedTime = micro(t)
	} else {
		ev.Count++
		ev.LastTimestamp = mt
	}
	ev.ManagedFields[0].Time = &mt
	le.ev = ev
	le.last = t
	if le.budget > 0 {
		le.budget--
	}
	return state{op: eventlog.OpUpdate, sc: le.tn.sc, ev: ev}
}

// recordOrBump updates *slot if it still can be, or records a new event and
// keeps it in *slot. It is how the kubelet's Pulled/Created/Started events of
// a restarting container grow their counts.
func (g *Generator) recordOrBump(tn *tenant, slot **liveEvent, s evSpec, p *pod, budget int) state {
	if le := *slot; g.repeatable(le) {
		if le.budget < budget {
			le.budget = budget
			g.addRepeater(le)
		}
		return g.bump(le)
	}
	st, le := g.record(tn, s, p, budget)
	*slot = le
	return st
}

func (g *Generator) addRepeater(le *liveEvent) {
	for _, r := range g.repeaters {
		if r == le {
			return
		}
	}
	if len(g.repeaters) >= maxRepeaters {
		// Forget a random one: it simply stops repeating.
		i := g.rng.IntN(len(g.repeaters))
		g.repeaters[i] = le
		return
	}
	g.repeaters = append(g.repeaters, le)
}

// repeat updates a random repeating event.
func (g *Generator) repeat() (state, bool) {
	if len(g.repeaters) == 0 {
		return state{}, false
	}
	i := g.rng.IntN(len(g.repeaters))
	le := g.repeaters[i]
	if !g.repeatable(le) || le.budget <= 0 {
		last := len(g.repeaters) - 1
		g.repeaters[i] = g.repeaters[last]
		g.repeaters[last] = nil
		g.repeaters = g.repeaters[:last]
		return state{}, false
	}
	return g.bump(le), true
}

// expire deletes the oldest live event, as the API server's event TTL does.
func (g *Generator) expire() (state, bool) {
	for {
		le := g.live.pop()
		if le == nil {
			return state{}, false
		}
		if le.deleted || le.last.After(g.t) {
			continue
		}
		le.deleted = true
		return state{op: eventlog.OpDelete, sc: le.tn.sc, ev: le.ev}, true
	}
}

// ring is a bounded FIFO of live events, oldest first.
type ring struct {
	buf  []*liveEvent
	head int
	n    int
}

func (r *ring) push(le *liveEvent) {
	if r.buf == nil {
		r.buf = make([]*liveEvent, maxLive)
	}
	if r.n == len(r.buf) {
		// Full: the oldest falls out. It stays in the cluster as far as
		// anyone can tell; it just will not be deleted by us.
		r.buf[r.head] = le
		r.head = (r.head + 1) % len(r.buf)
		return
	}
	r.buf[(r.head+r.n)%len(r.buf)] = le
	r.n++
}

func (r *ring) pop() *liveEvent {
	if r.n == 0 {
		return nil
	}
	le := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return le
}
