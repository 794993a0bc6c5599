package activity

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Variables lists the names rules can use, for error messages and docs.
const Variables = "event, regarding, related, actor, count, kind, namespace; function: link(text, object)"

// linkFunc is the name of the link function.
const linkFunc = "link"

// The two environments differ only in what link returns: the text (for
// printing) or the object (to record the link). A summary part that is a
// link(...) call is compiled in both, so recording a link needs no side
// channel out of CEL and programs stay safe for concurrent use.
var (
	envOnce            sync.Once
	textEnv, objectEnv *cel.Env
	envErr             error
)

func envs() (*cel.Env, *cel.Env, error) {
	envOnce.Do(func() {
		base := []cel.EnvOption{
			cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("regarding", cel.MapType(cel.StringType, cel.StringType)),
			cel.Variable("related", cel.MapType(cel.StringType, cel.StringType)),
			cel.Variable("actor", cel.StringType),
			cel.Variable("count", cel.IntType),
			cel.Variable("kind", cel.StringType),
			cel.Variable("namespace", cel.StringType),
			ext.Strings(),
		}
		textEnv, objectEnv, envErr = linkEnvs(base)
	})
	return textEnv, objectEnv, envErr
}

// linkEnvs builds the pair of environments over base: link returns its
// text in the first, its object in the second.
func linkEnvs(base []cel.EnvOption) (text, object *cel.Env, err error) {
	text, err = cel.NewEnv(append(base, cel.Function(linkFunc,
		cel.Overload("link_string_dyn_text", []*cel.Type{cel.StringType, cel.DynType}, cel.StringType,
			cel.BinaryBinding(func(text, _ ref.Val) ref.Val { return text }))))...)
	if err != nil {
		return nil, nil, err
	}
	object, err = cel.NewEnv(append(base, cel.Function(linkFunc,
		cel.Overload("link_string_dyn_object", []*cel.Type{cel.StringType, cel.DynType}, cel.DynType,
			cel.BinaryBinding(func(_, obj ref.Val) ref.Val { return obj }))))...)
	return text, object, err
}

// vars is the activation of one event: the variables rules see. The event
// map is built on first use only, since most rules look at regarding and
// event.reason alone... and event.reason needs the map, so it is cached.
type vars struct {
	ev        *corev1.Event
	eventMap  map[string]any
	regarding map[string]string
	related   map[string]string
	actor     string
	count     int64
}

var _ interpreter.Activation = (*vars)(nil)

func newVars(ev *corev1.Event) *vars {
	v := &vars{ev: ev, regarding: refMap(&ev.InvolvedObject), actor: actorOf(ev), count: int64(countOf(ev))}
	if ev.Related != nil {
		v.related = refMap(ev.Related)
	} else {
		v.related = emptyRef
	}
	return v
}

// emptyRef stands for an absent related object: its fields read as "" so
// templates need no has() guard.
var emptyRef = map[string]string{"apiVersion": "", "apiGroup": "", "kind": "", "namespace": "", "name": "", "uid": "", "fieldPath": "", "resourceVersion": ""}

func (v *vars) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		if v.eventMap == nil {
			v.eventMap = eventMap(v.ev)
		}
		return v.eventMap, true
	case "regarding":
		return v.regarding, true
	case "related":
		return v.related, true
	case "actor":
		return v.actor, true
	case "count":
		return v.count, true
	case "kind":
		return v.ev.InvolvedObject.Kind, true
	case "namespace":
		return v.ev.Namespace, true
	}
	return nil, false
}

func (v *vars) Parent() interpreter.Activation { return nil }

func refMap(r *corev1.ObjectReference) map[string]string {
	return map[string]string{
		"apiVersion": r.APIVersion, "apiGroup": groupOf(r.APIVersion), "kind": r.Kind, "namespace": r.Namespace,
		"name": r.Name, "uid": string(r.UID), "fieldPath": r.FieldPath, "resourceVersion": r.ResourceVersion,
	}
}

func groupOf(apiVersion string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return ""
	}
	return gv.Group
}

// actorOf is who reported ev: events.k8s.io writers set
// reportingController, core/v1 writers source.component.
func actorOf(ev *corev1.Event) string {
	if ev.ReportingController != "" {
		return ev.ReportingController
	}
	return ev.Source.Component
}

// countOf is how many times ev was observed, whichever API wrote it.
func countOf(ev *corev1.Event) int32 {
	if ev.Series != nil && ev.Series.Count > 0 {
		return ev.Series.Count
	}
	if ev.Count > 0 {
		return ev.Count
	}
	return 1
}

// eventMap is the event as rules see it, with the field names of both
// core/v1 and events.k8s.io/v1, so a rule written against either reads the
// same record (note = message, regarding = involvedObject, …).
func eventMap(ev *corev1.Event) map[string]any {
	regarding := stringAnyMap(refMap(&ev.InvolvedObject))
	var related any = stringAnyMap(emptyRef)
	if ev.Related != nil {
		related = stringAnyMap(refMap(ev.Related))
	}
	ts := func(t interface{ IsZero() bool }, s func() string) string {
		if t.IsZero() {
			return ""
		}
		return s()
	}
	series := map[string]any{"count": int64(0), "lastObservedTime": ""}
	if ev.Series != nil {
		series["count"] = int64(ev.Series.Count)
		series["lastObservedTime"] = ts(&ev.Series.LastObservedTime, func() string { return ev.Series.LastObservedTime.UTC().Format("2006-01-02T15:04:05.000000Z") })
	}
	labels := map[string]any{}
	for k, v := range ev.Labels {
		labels[k] = v
	}
	annotations := map[string]any{}
	for k, v := range ev.Annotations {
		annotations[k] = v
	}
	source := map[string]any{"component": ev.Source.Component, "host": ev.Source.Host}
	return map[string]any{
		"metadata": map[string]any{"name": ev.Name, "namespace": ev.Namespace, "uid": string(ev.UID), "labels": labels, "annotations": annotations},
		"name":     ev.Name, "namespace": ev.Namespace,
		"reason": ev.Reason, "message": ev.Message, "note": ev.Message, "type": ev.Type, "action": ev.Action,
		"involvedObject": regarding, "regarding": regarding, "related": related,
		"source": source, "deprecatedSource": source,
		"reportingComponent": ev.ReportingController, "reportingController": ev.ReportingController,
		"reportingInstance": ev.ReportingInstance,
		"count":             int64(ev.Count), "deprecatedCount": int64(ev.Count),
		"firstTimestamp": ts(&ev.FirstTimestamp, func() string { return ev.FirstTimestamp.UTC().Format("2006-01-02T15:04:05Z") }),
		"lastTimestamp":  ts(&ev.LastTimestamp, func() string { return ev.LastTimestamp.UTC().Format("2006-01-02T15:04:05Z") }),
		"eventTime":      ts(&ev.EventTime, func() string { return ev.EventTime.UTC().Format("2006-01-02T15:04:05.000000Z") }),
		"series":         series,
	}
}

func stringAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// printVal renders a CEL value as summary text.
func printVal(v ref.Val) string {
	switch x := v.(type) {
	case types.String:
		return string(x)
	case types.Int:
		return strconv.FormatInt(int64(x), 10)
	case types.Null:
		return ""
	}
	if s, ok := v.ConvertToType(types.StringType).(types.String); ok {
		return string(s)
	}
	return fmt.Sprint(v.Value())
}

// resourceOf reads a link's object: any map with the fields of an object
// reference (kind, name, namespace, apiVersion, uid).
func resourceOf(v ref.Val) (activityv1alpha1.ActivityResource, error) {
	m, ok := v.(traits.Mapper)
	if !ok {
		return activityv1alpha1.ActivityResource{}, fmt.Errorf("link: the object must be a map such as regarding or related, got %s", v.Type().TypeName())
	}
	get := func(k string) string {
		if x, found := m.Find(types.String(k)); found {
			if s, ok := x.(types.String); ok {
				return string(s)
			}
		}
		return ""
	}
	r := activityv1alpha1.ActivityResource{APIVersion: get("apiVersion"), Kind: get("kind"), Namespace: get("namespace"),
		Name: get("name"), UID: get("uid")}
	r.APIGroup = groupOf(r.APIVersion)
	return r, nil
}

// trimSummary keeps summaries to one line of bounded length.
func trimSummary(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const max = 1024
	if len(s) > max {
		cut := max
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
