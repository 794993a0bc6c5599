package table

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apiserver/pkg/registry/rest"
)

// unknownTime is what a time cell says when the Event has no such time.
const unknownTime = "<unknown>"

// ColumnDefinitions returns the columns of the Event table, in order: LAST
// SEEN, TYPE, REASON, OBJECT, SUBOBJECT, SOURCE, MESSAGE, FIRST SEEN, COUNT
// and NAME. Subobject, Source, First Seen, Count and Name have priority 1
// (kubectl shows them with -o wide only). Every column is declared as a
// string, Count included, although its cells are integers; Name has the
// "name" format. Descriptions are the core/v1 API documentation of the field
// each column shows, as in kube.
//
// The result is a fresh slice; callers may modify it.
func ColumnDefinitions() []metav1.TableColumnDefinition {
	ev := corev1.Event{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		{Name: "Last Seen", Type: "string", Description: ev["lastTimestamp"]},
		{Name: "Type", Type: "string", Description: ev["type"]},
		{Name: "Reason", Type: "string", Description: ev["reason"]},
		{Name: "Object", Type: "string", Description: ev["involvedObject"]},
		{Name: "Subobject", Type: "string", Priority: 1, Description: corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]},
		{Name: "Source", Type: "string", Priority: 1, Description: ev["source"]},
		{Name: "Message", Type: "string", Description: ev["message"]},
		{Name: "First Seen", Type: "string", Priority: 1, Description: ev["firstTimestamp"]},
		{Name: "Count", Type: "string", Priority: 1, Description: ev["count"]},
		{Name: "Name", Type: "string", Priority: 1, Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
	}
}

// Rows returns one table row per event, in the order given, with ages
// measured at now. Each row carries a pointer to its element of events in
// Object; the apiserver's Table handler replaces it with the object's
// metadata or removes it, as the request's includeObject asks.
func Rows(events []corev1.Event, now time.Time) ([]metav1.TableRow, error) {
	rows := make([]metav1.TableRow, 0, len(events))
	for i := range events {
		rows = append(rows, metav1.TableRow{
			Cells:  Cells(&events[i], now),
			Object: runtime.RawExtension{Object: &events[i]},
		})
	}
	return rows, nil
}

// Cells returns the cells of ev's row, one for each of ColumnDefinitions,
// with ages measured at now.
//
//   - First Seen is the age of firstTimestamp or, when that is unset, of
//     eventTime.
//   - Last Seen is the age of series.lastObservedTime when there is a series;
//     otherwise of lastTimestamp or, when that is unset, the First Seen cell.
//   - Count is series.count when there is a series; otherwise count, with 0
//     shown as 1 (events.k8s.io singletons have no count).
//   - An unset time shows as "<unknown>"; ages use the apiserver's
//     HumanDuration ("90s", "3m12s", "26h", "10d", "2y70d", "<invalid>" for
//     times more than a second in the future).
//   - Object is the lower-cased kind and the name ("pod/web-0"), or the kind
//     alone when the name is empty.
//   - Source is the source component, else the reporting controller, then
//     ", " and the source host, else the reporting instance, when there is
//     one.
//   - Message has leading and trailing white space trimmed.
func Cells(ev *corev1.Event, now time.Time) []interface{} {
	firstSeen := age(ev.FirstTimestamp.Time, now)
	if ev.FirstTimestamp.IsZero() {
		firstSeen = age(ev.EventTime.Time, now)
	}

	lastSeen := age(ev.LastTimestamp.Time, now)
	if ev.LastTimestamp.IsZero() {
		lastSeen = firstSeen
	}

	count := ev.Count
	switch {
	case ev.Series != nil:
		lastSeen = age(ev.Series.LastObservedTime.Time, now)
		count = ev.Series.Count
	case count == 0:
		count = 1
	}

	object := strings.ToLower(ev.InvolvedObject.Kind)
	if ev.InvolvedObject.Name != "" {
		object += "/" + ev.InvolvedObject.Name
	}

	return []interface{}{
		lastSeen,
		ev.Type,
		ev.Reason,
		object,
		ev.InvolvedObject.FieldPath,
		source(ev),
		strings.TrimSpace(ev.Message),
		firstSeen,
		int64(count),
		ev.Name,
	}
}

// age renders how long before now t was, or "<unknown>" for an unset time.
func age(t time.Time, now time.Time) string {
	if t.IsZero() {
		return unknownTime
	}
	return duration.HumanDuration(now.Sub(t))
}

func source(ev *corev1.Event) string {
	component := ev.Source.Component
	if component == "" {
		component = ev.ReportingController
	}
	instance := ev.Source.Host
	if instance == "" {
		instance = ev.ReportingInstance
	}
	if instance == "" {
		return component
	}
	return component + ", " + instance
}

// TableConvertor turns Events of either API group into Tables. It
// implements rest.TableConvertor for *corev1.Event, *corev1.EventList,
// *eventsv1.Event and *eventsv1.EventList.
//
// The zero value converts core/v1 objects at the current time. It is safe
// for concurrent use as long as its fields are not changed.
type TableConvertor struct {
	// ToCore maps an events.k8s.io/v1 Event to its core/v1 form. It is
	// needed only for events.k8s.io/v1 objects and must not modify its
	// argument.
	ToCore func(*eventsv1.Event) *corev1.Event
	// Now returns the time ages are measured at; nil means time.Now.
	Now func() time.Time
}

var _ rest.TableConvertor = TableConvertor{}

// NewTableConvertor returns a TableConvertor that maps events.k8s.io/v1
// Events with toCore.
func NewTableConvertor(toCore func(*eventsv1.Event) *corev1.Event) TableConvertor {
	return TableConvertor{ToCore: toCore}
}

// ConvertToTable renders obj, one Event or an EventList of either group, as
// a Table. tableOptions may be nil or *metav1.TableOptions; with NoHeaders
// set the Table has no column definitions, but rows keep every cell.
//
// A single Event's Table carries the Event's resourceVersion; a list's
// Table carries the list's resourceVersion, continue token and
// remainingItemCount. Rows carry the objects as given (events.k8s.io/v1
// objects stay events.k8s.io/v1), so that the apiserver's includeObject
// handling can convert them to the request's version.
func (c TableConvertor) ConvertToTable(_ context.Context, obj runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	noHeaders := false
	if tableOptions != nil {
		opts, ok := tableOptions.(*metav1.TableOptions)
		if !ok {
			return nil, fmt.Errorf("unrecognized type %T for table options, can't display tabular output", tableOptions)
		}
		if opts != nil {
			noHeaders = opts.NoHeaders
		}
	}

	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}

	table := &metav1.Table{}
	switch o := obj.(type) {
	case *corev1.Event:
		table.Rows = []metav1.TableRow{{Cells: Cells(o, now), Object: runtime.RawExtension{Object: o}}}
		table.ResourceVersion = o.ResourceVersion
	case *corev1.EventList:
		rows, err := Rows(o.Items, now)
		if err != nil {
			return nil, err
		}
		table.Rows = rows
		setListMeta(table, &o.ListMeta)
	case *eventsv1.Event:
		core, err := c.toCore(o)
		if err != nil {
			return nil, err
		}
		table.Rows = []metav1.TableRow{{Cells: Cells(core, now), Object: runtime.RawExtension{Object: o}}}
		table.ResourceVersion = o.ResourceVersion
	case *eventsv1.EventList:
		table.Rows = make([]metav1.TableRow, 0, len(o.Items))
		for i := range o.Items {
			core, err := c.toCore(&o.Items[i])
			if err != nil {
				return nil, err
			}
			table.Rows = append(table.Rows, metav1.TableRow{Cells: Cells(core, now), Object: runtime.RawExtension{Object: &o.Items[i]}})
		}
		setListMeta(table, &o.ListMeta)
	default:
		return nil, fmt.Errorf("no table handler registered for this type %T", obj)
	}

	if !noHeaders {
		table.ColumnDefinitions = ColumnDefinitions()
	}
	return table, nil
}

func (c TableConvertor) toCore(ev *eventsv1.Event) (*corev1.Event, error) {
	if c.ToCore == nil {
		return nil, fmt.Errorf("table convertor has no events.k8s.io/v1 mapping for %T", ev)
	}
	core := c.ToCore(ev)
	if core == nil {
		return nil, fmt.Errorf("events.k8s.io/v1 Event %s/%s has no core/v1 form", ev.Namespace, ev.Name)
	}
	return core, nil
}

func setListMeta(table *metav1.Table, lm *metav1.ListMeta) {
	table.ResourceVersion = lm.ResourceVersion
	table.Continue = lm.Continue
	if lm.RemainingItemCount != nil {
		n := *lm.RemainingItemCount
		table.RemainingItemCount = &n
	}
}
