package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/kubeevents/conversion"
)

// Item is one event of a request body, decoded or refused.
type Item struct {
	// Index counts the events of the body from 0, in the order they appear:
	// a list's items in place of the list, one per NDJSON line.
	Index int
	// Op is what the item does: create or update (inferred from the event)
	// or, from a watch-event envelope, what the envelope says.
	Op eventlog.Op
	// Event is the core/v1 form of the item; nil when Err is set.
	Event *corev1.Event
	// GroupVersion is the API the item was written in; it selects the
	// validation rules (events.k8s.io/v1 is stricter).
	GroupVersion schema.GroupVersion
	// Raw is the item's JSON, for content-derived message ids.
	Raw []byte
	// Err says why the item is refused; its field path starts at
	// items[Index].
	Err *field.Error
}

// Limits bound what one request may carry.
type Limits struct {
	// MaxItemBytes bounds one event's JSON.
	MaxItemBytes int
	// MaxItems bounds the events of one request.
	MaxItems int
}

// ErrTooManyItems is returned by Parse when the body holds more than
// Limits.MaxItems events.
type ErrTooManyItems struct{ Max int }

func (e ErrTooManyItems) Error() string {
	return fmt.Sprintf("the body holds more than %d events; send at most %d per request", e.Max, e.Max)
}

// allowedShapes is what the error for an unreadable body suggests.
const allowedShapes = "a core/v1 or events.k8s.io/v1 Event, an EventList, a watch event {\"type\":..., \"object\":...}, a JSON array of these, or NDJSON with one per line"

// Parse reads a request body: with ndjson (or when the body's first line
// is a whole JSON value and more lines follow), one JSON value per
// non-empty line; otherwise exactly one JSON value, which may be an array. A value is
// an Event, an EventList or a watch event. Items that cannot be used are
// returned with Err set, so that one bad item does not sink the others; the
// error is for a body whose structure cannot be read at all (then no item
// can be trusted) or that holds too many items.
func Parse(body []byte, ndjson bool, lim Limits) ([]Item, error) {
	p := &parser{lim: lim}
	if !ndjson && looksLikeNDJSON(body) {
		// Sinks that frame one event per line often still say
		// application/json.
		ndjson = true
	}
	if ndjson {
		for line := range bytes.SplitSeq(body, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			if err := p.value(line, ""); err != nil {
				return nil, err
			}
		}
	} else {
		body = bytes.TrimSpace(body)
		if len(body) == 0 {
			return nil, fmt.Errorf("the body is empty; send %s", allowedShapes)
		}
		if !json.Valid(body) {
			var v any
			err := json.Unmarshal(body, &v)
			return nil, fmt.Errorf("the body is not valid JSON (%v); send %s", err, allowedShapes)
		}
		if body[0] == '[' {
			var elems []json.RawMessage
			if err := json.Unmarshal(body, &elems); err != nil {
				return nil, fmt.Errorf("the body is not a JSON array of events (%v); send %s", err, allowedShapes)
			}
			for _, e := range elems {
				if err := p.value(e, ""); err != nil {
					return nil, err
				}
			}
		} else if err := p.value(body, ""); err != nil {
			return nil, err
		}
	}
	if len(p.items) == 0 {
		return nil, fmt.Errorf("the body holds no events; send %s", allowedShapes)
	}
	return p.items, nil
}

// looksLikeNDJSON reports whether body is several JSON values, one per
// line, rather than one: its first line alone is a whole JSON value and
// more follows. A pretty-printed document's first line never is.
func looksLikeNDJSON(body []byte) bool {
	body = bytes.TrimSpace(body)
	first, rest, ok := bytes.Cut(body, []byte("\n"))
	return ok && len(bytes.TrimSpace(rest)) > 0 && json.Valid(first)
}

type parser struct {
	lim   Limits
	items []Item
}

// probe reads what tells the shapes apart.
type probe struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
	Type       string            `json:"type"`
	Object     json.RawMessage   `json:"object"`
}

// value adds the item(s) of one top-level JSON value. defaultAPIVersion is
// the enclosing list's, for items that do not name their own.
func (p *parser) value(raw []byte, defaultAPIVersion string) error {
	if len(p.items) >= p.lim.MaxItems {
		return ErrTooManyItems{Max: p.lim.MaxItems}
	}
	idx := len(p.items)
	path := field.NewPath("items").Index(idx)
	reject := func(e *field.Error) error {
		p.items = append(p.items, Item{Index: idx, Raw: raw, Err: e})
		return nil
	}
	var pr probe
	if !readProbe(raw, &pr) {
		pr = probe{}
		if err := json.Unmarshal(raw, &pr); err != nil {
			return reject(field.Invalid(path, "", fmt.Sprintf("not a JSON object (%v); allowed: %s", err, allowedShapes)))
		}
	}
	switch {
	case strings.HasSuffix(pr.Kind, "List"):
		if pr.Kind != "EventList" {
			return reject(field.NotSupported(path.Child("kind"), pr.Kind, []string{"Event", "EventList"}))
		}
		if _, err := groupVersion(pr.APIVersion); err != nil {
			return reject(field.NotSupported(path.Child("apiVersion"), pr.APIVersion, supportedVersions))
		}
		for _, it := range pr.Items {
			if err := p.value(it, pr.APIVersion); err != nil {
				return err
			}
		}
		return nil
	case pr.Kind == "" && len(pr.Object) > 0:
		op, ok := watchOps[watch.EventType(pr.Type)]
		if !ok {
			return reject(field.NotSupported(path.Child("type"), pr.Type, []string{string(watch.Added), string(watch.Modified), string(watch.Deleted)}))
		}
		it := p.event(pr.Object, defaultAPIVersion, idx, path.Child("object"))
		if it.Err == nil {
			it.Op = op
		}
		p.items = append(p.items, it)
		return nil
	}
	p.items = append(p.items, p.event(raw, defaultAPIVersion, idx, path))
	return nil
}

var watchOps = map[watch.EventType]eventlog.Op{watch.Added: eventlog.OpCreate, watch.Modified: eventlog.OpUpdate, watch.Deleted: eventlog.OpDelete}

var supportedVersions = []string{corev1.SchemeGroupVersion.String(), eventsv1.SchemeGroupVersion.String()}

// groupVersion maps an apiVersion to the API it names; empty means core/v1,
// which is what webhook sinks that send bare Events (no apiVersion) mean.
func groupVersion(apiVersion string) (schema.GroupVersion, error) {
	switch apiVersion {
	case "", "v1":
		return corev1.SchemeGroupVersion, nil
	case "events.k8s.io/v1":
		return eventsv1.SchemeGroupVersion, nil
	}
	return schema.GroupVersion{}, fmt.Errorf("unsupported apiVersion %q", apiVersion)
}

// event decodes one Event.
func (p *parser) event(raw []byte, defaultAPIVersion string, idx int, path *field.Path) Item {
	it := Item{Index: idx, Raw: raw}
	if len(raw) > p.lim.MaxItemBytes {
		it.Err = field.TooLong(path, "", p.lim.MaxItemBytes)
		it.Err.Detail = fmt.Sprintf("the event is %d bytes of JSON; at most %d allowed", len(raw), p.lim.MaxItemBytes)
		return it
	}
	// One decode in the common case: a core/v1 Event carries its own
	// apiVersion and kind (TypeMeta is inline), so they come out of the same
	// pass; only an events.k8s.io/v1 item is decoded a second time, as what
	// it says it is. Case-sensitive, as kube-apiserver decodes: "Reason" is
	// not "reason".
	var ev corev1.Event
	if err := decodeJSON(raw, &ev); err != nil {
		it.Err = field.Invalid(path, "", fmt.Sprintf("cannot decode as a core/v1 Event: %v", err))
		if !json.Valid(raw) || raw[0] != '{' {
			it.Err.Detail = fmt.Sprintf("not a JSON object (%v)", err)
		}
	}
	if ev.Kind != "" && ev.Kind != "Event" {
		it.Err = field.NotSupported(path.Child("kind"), ev.Kind, []string{"Event", "EventList"})
		return it
	}
	av := ev.APIVersion
	if av == "" {
		av = defaultAPIVersion
	}
	gv, err := groupVersion(av)
	if err != nil {
		it.Err = field.NotSupported(path.Child("apiVersion"), av, supportedVersions)
		return it
	}
	it.GroupVersion = gv
	if gv == eventsv1.SchemeGroupVersion {
		var ev1 eventsv1.Event
		if err := decodeJSON(raw, &ev1); err != nil {
			it.Err = field.Invalid(path, "", fmt.Sprintf("cannot decode as an events.k8s.io/v1 Event: %v", err))
			return it
		}
		it.Err = nil // the core/v1 reading does not matter
		it.Event = conversion.FromEventsV1(&ev1)
	} else {
		if it.Err != nil {
			return it
		}
		it.Event = &ev
	}
	it.Event.TypeMeta.APIVersion, it.Event.TypeMeta.Kind = "", ""
	it.Op = eventlog.OpCreate
	if it.Event.Count > 1 || it.Event.Series != nil {
		// Observed more than once: a later state of an existing event.
		it.Op = eventlog.OpUpdate
	}
	return it
}
