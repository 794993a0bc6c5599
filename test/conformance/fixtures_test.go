package conformance

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Times in the fixtures: recent, so that eventpipe's 24-hour window on the
// native API (issue 3) includes them, and fixed for the whole run, so both
// servers get the same bodies.
var (
	fixtureNow = time.Now().UTC().Add(-2 * time.Minute).Truncate(time.Second)
	tsFirst    = fixtureNow.Add(-5 * time.Minute).Format(time.RFC3339)
	tsLast     = fixtureNow.Format(time.RFC3339)
	// tsMicro is an eventTime (MicroTime) with microseconds.
	tsMicro = fixtureNow.Add(123456 * time.Microsecond).Format("2006-01-02T15:04:05.000000Z07:00")
)

// Paths of the two groups' namespaced collections; rest is "" or "/NAME".
func corePath(rest string) string { return "/api/v1/namespaces/{{ns}}/events" + rest }
func evPath(rest string) string   { return "/apis/events.k8s.io/v1/namespaces/{{ns}}/events" + rest }

const (
	coreAll = "/api/v1/events"
	evAll   = "/apis/events.k8s.io/v1/events"
)

type obj = map[string]any

// mod changes a fixture object.
type mod func(obj)

// set sets the value at a dotted path ("involvedObject.kind"), creating
// objects on the way.
func set(path string, v any) mod {
	return func(o obj) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := o[k].(obj)
			if !ok {
				next = obj{}
				o[k] = next
			}
			o = next
		}
		o[keys[len(keys)-1]] = v
	}
}

// unset removes the value at a dotted path.
func unset(path string) mod {
	return func(o obj) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := o[k].(obj)
			if !ok {
				return
			}
			o = next
		}
		delete(o, keys[len(keys)-1])
	}
}

func labels(kv ...string) mod {
	l := obj{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return set("metadata.labels", l)
}

func build(o obj, mods []mod) string {
	for _, m := range mods {
		m(o)
	}
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// coreEvent is a core/v1 Event as the kubelet writes one.
func coreEvent(name string, mods ...mod) string {
	return build(obj{
		"apiVersion": "v1", "kind": "Event",
		"metadata": obj{"name": name, "namespace": "{{ns}}"},
		"involvedObject": obj{"kind": "Pod", "namespace": "{{ns}}", "name": "web-1", "uid": "pod-uid-1",
			"apiVersion": "v1", "resourceVersion": "42", "fieldPath": "spec.containers{web}"},
		"reason": "Pulling", "message": `Pulling image "nginx:1.27"`, "type": "Normal",
		"source":         obj{"component": "kubelet", "host": "node-1"},
		"firstTimestamp": tsFirst, "lastTimestamp": tsLast, "count": 1,
	}, mods)
}

// evEvent is an events.k8s.io/v1 Event as a controller's new-style
// recorder writes one.
func evEvent(name string, mods ...mod) string {
	return build(obj{
		"apiVersion": "events.k8s.io/v1", "kind": "Event",
		"metadata":            obj{"name": name, "namespace": "{{ns}}"},
		"eventTime":           tsMicro,
		"reportingController": "example.com/web-controller", "reportingInstance": "web-controller-1",
		"action": "Scaling", "reason": "ScalingReplicaSet", "note": "Scaled up replica set web-1 to 2", "type": "Normal",
		"regarding": obj{"kind": "Deployment", "namespace": "{{ns}}", "name": "web", "uid": "deploy-uid-1",
			"apiVersion": "apps/v1", "resourceVersion": "7", "fieldPath": "spec.replicas"},
	}, mods)
}

// newStyleCore makes a core/v1 fixture a new-style one (eventTime and the
// reporting fields set), which core validation treats differently.
var newStyleCore = []mod{
	set("eventTime", tsMicro), set("reportingComponent", "example.com/ctrl"), set("reportingInstance", "ctrl-1"),
	set("action", "Pull"),
}

// Steps.

// get is a GET. One that asks for resourceVersion=0 ("any") may be answered
// from a cache that trails the writes, as list explains, so it is retried
// until both servers agree.
func get(path string, query ...string) step {
	return step{method: http.MethodGet, path: path, query: query, eventually: anyResourceVersion(query)}
}

// list is a GET that lists. Reads are consistent (invariant 4,
// docs/architecture.md#4-consistent-reads):
// a list answers right after a write with that write in it, so it is played
// once, with no retry, unless it asks for resourceVersion=0 ("any"), which
// both servers may answer from a cache that trails the writes.
func list(path string, query ...string) step {
	return step{method: http.MethodGet, path: path, query: query, eventually: anyResourceVersion(query)}
}

// watch reads events watch events; its initial events are a list's.
func watch(path string, events int, query ...string) step {
	return step{method: http.MethodGet, path: path, query: append([]string{"watch", "true"}, query...), watch: events,
		eventually: anyResourceVersion(query)}
}

// anyResourceVersion reports whether a query asks for resourceVersion=0.
func anyResourceVersion(query []string) bool {
	for i := 0; i+1 < len(query); i += 2 {
		if query[i] == "resourceVersion" && query[i+1] == "0" {
			return true
		}
	}
	return false
}

func post(path, body string, query ...string) step {
	return step{method: http.MethodPost, path: path, query: query, contentType: mediaJSON, body: body}
}

func put(path, body string, query ...string) step {
	return step{method: http.MethodPut, path: path, query: query, contentType: mediaJSON, body: body}
}

func patch(path, contentType, body string, query ...string) step {
	return step{method: http.MethodPatch, path: path, query: query, contentType: contentType, body: body}
}

func del(path string, query ...string) step {
	return step{method: http.MethodDelete, path: path, query: query}
}

func (s step) accepting(media string) step { s.accept = media; return s }
func (s step) as(media string) step        { s.contentType = media; return s }
func (s step) saved(prefix string) step    { s.save = prefix; return s }
func (s step) withBody(body string) step   { s.body = body; return s }
func (s step) proto() step                 { s.protoBody = true; s.contentType = mediaProtobuf; return s }

// deleteOptions is a DeleteOptions body.
func deleteOptions(fields string) string {
	return `{"apiVersion":"v1","kind":"DeleteOptions"` + fields + `}`
}
