package conversion

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	t0      = time.Date(2026, 3, 6, 14, 2, 11, 0, time.UTC)
	t1      = t0.Add(4 * time.Minute)
	t0Micro = time.Date(2026, 3, 6, 14, 2, 11, 123456000, time.UTC)
	t1Micro = t0Micro.Add(90 * time.Second)
)

// kubeletEvent is what the kubelet's legacy recorder writes: count, first and
// last timestamps and a source, no eventTime or series.
func kubeletEvent() *corev1.Event {
	return &corev1.Event{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              "web-7d4b9c-x2x9q.18a9f3c2b1d4e5f6",
			Namespace:         "shop",
			UID:               "5b0c2d6e-1f4a-4c9b-8e2d-7a6b5c4d3e2f",
			ResourceVersion:   "48211",
			CreationTimestamp: metav1.NewTime(t0),
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager:    "kubelet",
				Operation:  metav1.ManagedFieldsOperationUpdate,
				APIVersion: "v1",
				Time:       &metav1.Time{Time: t1},
				FieldsType: "FieldsV1",
				FieldsV1:   &metav1.FieldsV1{Raw: []byte(`{"f:count":{},"f:message":{}}`)},
			}},
		},
		InvolvedObject: corev1.ObjectReference{
			Kind:            "Pod",
			Namespace:       "shop",
			Name:            "web-7d4b9c-x2x9q",
			UID:             "9c1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6",
			APIVersion:      "v1",
			ResourceVersion: "48190",
			FieldPath:       "spec.containers{web}",
		},
		Reason:              "BackOff",
		Message:             "Back-off restarting failed container web in pod web-7d4b9c-x2x9q_shop(9c1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6)",
		Source:              corev1.EventSource{Component: "kubelet", Host: "node-3"},
		FirstTimestamp:      metav1.NewTime(t0),
		LastTimestamp:       metav1.NewTime(t1),
		Count:               17,
		Type:                corev1.EventTypeWarning,
		ReportingController: "kubelet",
		ReportingInstance:   "node-3",
	}
}

// seriesEventV1 is what client-go's events.k8s.io recorder writes for a
// repeated occurrence: eventTime, series, action, related, reporting*.
func seriesEventV1() *eventsv1.Event {
	return &eventsv1.Event{
		TypeMeta: metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "Event"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              "web-7d4b9c-x2x9q.18a9f3c2c0ffee00",
			Namespace:         "shop",
			UID:               "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a",
			ResourceVersion:   "48377",
			CreationTimestamp: metav1.NewTime(t0),
			Labels:            map[string]string{"app": "web"},
			Annotations:       map[string]string{"note": "kept"},
		},
		EventTime: metav1.NewMicroTime(t0Micro),
		Series: &eventsv1.EventSeries{
			Count:            4,
			LastObservedTime: metav1.NewMicroTime(t1Micro),
		},
		ReportingController: "default-scheduler",
		ReportingInstance:   "default-scheduler-control-plane-1",
		Action:              "Scheduling",
		Reason:              "FailedScheduling",
		Regarding: corev1.ObjectReference{
			Kind:            "Pod",
			Namespace:       "shop",
			Name:            "web-7d4b9c-x2x9q",
			UID:             "9c1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6",
			APIVersion:      "v1",
			ResourceVersion: "48190",
		},
		Related: &corev1.ObjectReference{
			Kind:       "Node",
			Name:       "node-3",
			UID:        "11111111-2222-3333-4444-555555555555",
			APIVersion: "v1",
		},
		Note: "0/3 nodes are available: 3 Insufficient cpu.",
		Type: corev1.EventTypeWarning,
	}
}

func TestToEventsV1Mapping(t *testing.T) {
	in := kubeletEvent()
	got := ToEventsV1(in)

	want := &eventsv1.Event{
		TypeMeta:                 metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "Event"},
		ObjectMeta:               in.ObjectMeta,
		Regarding:                in.InvolvedObject,
		Note:                     in.Message,
		Reason:                   "BackOff",
		Type:                     corev1.EventTypeWarning,
		ReportingController:      "kubelet",
		ReportingInstance:        "node-3",
		DeprecatedSource:         corev1.EventSource{Component: "kubelet", Host: "node-3"},
		DeprecatedFirstTimestamp: metav1.NewTime(t0),
		DeprecatedLastTimestamp:  metav1.NewTime(t1),
		DeprecatedCount:          17,
	}
	require.Equal(t, want, got)
}

func TestFromEventsV1Mapping(t *testing.T) {
	in := seriesEventV1()
	got := FromEventsV1(in)

	want := &corev1.Event{
		TypeMeta:       metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta:     in.ObjectMeta,
		InvolvedObject: in.Regarding,
		Message:        in.Note,
		Reason:         "FailedScheduling",
		Type:           corev1.EventTypeWarning,
		EventTime:      metav1.NewMicroTime(t0Micro),
		Series: &corev1.EventSeries{
			Count:            4,
			LastObservedTime: metav1.NewMicroTime(t1Micro),
		},
		Action:              "Scheduling",
		Related:             in.Related,
		ReportingController: "default-scheduler",
		ReportingInstance:   "default-scheduler-control-plane-1",
	}
	require.Equal(t, want, got)
}

// TestWireShape pins the JSON a client of events.k8s.io/v1 receives for a
// kubelet event, field names included.
func TestWireShape(t *testing.T) {
	b, err := json.Marshal(ToEventsV1(kubeletEvent()))
	require.NoError(t, err)
	require.JSONEq(t, `{
		"kind": "Event",
		"apiVersion": "events.k8s.io/v1",
		"metadata": {
			"name": "web-7d4b9c-x2x9q.18a9f3c2b1d4e5f6",
			"namespace": "shop",
			"uid": "5b0c2d6e-1f4a-4c9b-8e2d-7a6b5c4d3e2f",
			"resourceVersion": "48211",
			"creationTimestamp": "2026-03-06T14:02:11Z",
			"managedFields": [{
				"manager": "kubelet",
				"operation": "Update",
				"apiVersion": "v1",
				"time": "2026-03-06T14:06:11Z",
				"fieldsType": "FieldsV1",
				"fieldsV1": {"f:count": {}, "f:message": {}}
			}]
		},
		"eventTime": null,
		"reportingController": "kubelet",
		"reportingInstance": "node-3",
		"reason": "BackOff",
		"regarding": {
			"kind": "Pod",
			"namespace": "shop",
			"name": "web-7d4b9c-x2x9q",
			"uid": "9c1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6",
			"apiVersion": "v1",
			"resourceVersion": "48190",
			"fieldPath": "spec.containers{web}"
		},
		"note": "Back-off restarting failed container web in pod web-7d4b9c-x2x9q_shop(9c1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6)",
		"type": "Warning",
		"deprecatedSource": {"component": "kubelet", "host": "node-3"},
		"deprecatedFirstTimestamp": "2026-03-06T14:02:11Z",
		"deprecatedLastTimestamp": "2026-03-06T14:06:11Z",
		"deprecatedCount": 17
	}`, string(b))
}

func TestRoundTrip(t *testing.T) {
	seriesCore := FromEventsV1(seriesEventV1())

	// An event that has been written through both groups: a legacy writer
	// created it, then an events.k8s.io writer started a series on it.
	mixed := kubeletEvent()
	mixed.EventTime = metav1.NewMicroTime(t0Micro)
	mixed.Series = &corev1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(t1Micro)}
	mixed.Action = "Restarting"
	mixed.Related = &corev1.ObjectReference{Kind: "Node", Name: "node-3"}

	// A series whose fields are all zero must stay a (zero) series, not
	// vanish: events.k8s.io/v1 serialises it as {"count":0,...}.
	zeroSeries := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "default"},
		Series:     &corev1.EventSeries{},
		Related:    &corev1.ObjectReference{},
	}

	tests := []struct {
		name string
		core *corev1.Event
	}{
		{name: "kubelet legacy event", core: kubeletEvent()},
		{name: "events.k8s.io series event", core: seriesCore},
		{name: "written by both groups", core: mixed},
		{name: "zero series and related", core: zeroSeries},
		{name: "empty event", core: &corev1.Event{}},
		{name: "fully populated", core: filledCoreEvent(t)},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/core-events-core", func(t *testing.T) {
			in := tc.core.DeepCopy()
			got := FromEventsV1(ToEventsV1(in))
			require.Equal(t, tc.core, in, "input modified")

			want := tc.core.DeepCopy()
			want.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Event"}
			require.Equal(t, want, got)
		})
		t.Run(tc.name+"/events-core-events", func(t *testing.T) {
			ev := ToEventsV1(tc.core)
			in := ev.DeepCopy()
			got := ToEventsV1(FromEventsV1(in))
			require.Equal(t, ev, in, "input modified")
			require.Equal(t, ev, got)
		})
	}
}

func TestNil(t *testing.T) {
	require.Nil(t, ToEventsV1(nil))
	require.Nil(t, FromEventsV1(nil))
	require.Nil(t, ToEventsV1List(nil))
	require.Nil(t, FromEventsV1List(nil))
}

// TestNoAliasing guards the store: a converted event handed to one reader
// must not change the record another reader sees.
func TestNoAliasing(t *testing.T) {
	core := filledCoreEvent(t)
	orig := core.DeepCopy()

	ev := ToEventsV1(core)
	ev.Labels["x"] = "changed"
	ev.Series.Count++
	ev.Related.Name = "changed"
	ev.ManagedFields[0].FieldsV1.Raw[0] = 'X'
	ev.OwnerReferences[0].Name = "changed"
	require.Equal(t, orig, core)

	src := ToEventsV1(core)
	back := FromEventsV1(src)
	back.Annotations["y"] = "changed"
	back.Series.Count++
	*back.DeletionTimestamp = metav1.NewTime(t1)
	require.NotEqual(t, back.Annotations, src.Annotations)
	require.NotEqual(t, back.Series.Count, src.Series.Count)
	require.NotEqual(t, *back.DeletionTimestamp, *src.DeletionTimestamp)
}

func TestLists(t *testing.T) {
	meta := metav1.ListMeta{ResourceVersion: "48377", Continue: "tok", RemainingItemCount: ptr(int64(12))}

	t.Run("items", func(t *testing.T) {
		in := &corev1.EventList{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "EventList"},
			ListMeta: meta,
			Items:    []corev1.Event{*kubeletEvent(), *FromEventsV1(seriesEventV1())},
		}
		got := ToEventsV1List(in)
		require.Equal(t, metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "EventList"}, got.TypeMeta)
		require.Equal(t, meta, got.ListMeta)
		require.Len(t, got.Items, 2)
		for i := range got.Items {
			// kube's list items carry no kind of their own.
			require.Equal(t, metav1.TypeMeta{}, got.Items[i].TypeMeta)
			want := ToEventsV1(&in.Items[i])
			want.TypeMeta = metav1.TypeMeta{}
			require.Equal(t, *want, got.Items[i])
		}

		back := FromEventsV1List(got)
		require.Equal(t, metav1.TypeMeta{APIVersion: "v1", Kind: "EventList"}, back.TypeMeta)
		require.Equal(t, meta, back.ListMeta)
		wantBack := in.DeepCopy()
		for i := range wantBack.Items {
			wantBack.Items[i].TypeMeta = metav1.TypeMeta{}
		}
		require.Equal(t, wantBack, back)

		got.RemainingItemCount = ptr(int64(0))
		require.Equal(t, int64(12), *in.RemainingItemCount, "list meta aliased")
	})

	t.Run("nil and empty items stay apart", func(t *testing.T) {
		require.Nil(t, ToEventsV1List(&corev1.EventList{}).Items)
		require.Nil(t, FromEventsV1List(&eventsv1.EventList{}).Items)

		empty := ToEventsV1List(&corev1.EventList{Items: []corev1.Event{}})
		require.NotNil(t, empty.Items)
		require.Empty(t, empty.Items)
		b, err := json.Marshal(empty)
		require.NoError(t, err)
		require.JSONEq(t, `{"kind":"EventList","apiVersion":"events.k8s.io/v1","metadata":{},"items":[]}`, string(b))

		emptyBack := FromEventsV1List(&eventsv1.EventList{Items: []eventsv1.Event{}})
		require.NotNil(t, emptyBack.Items)
		require.Empty(t, emptyBack.Items)
	})
}

// TestEveryFieldMapped fails when k8s.io/api grows an Event field that the
// mapping does not carry: a fully populated event must come out with every
// field of the other group set.
func TestEveryFieldMapped(t *testing.T) {
	ev := ToEventsV1(filledCoreEvent(t))
	requireAllFieldsSet(t, reflect.ValueOf(*ev), "eventsv1.Event")

	core := FromEventsV1(ev)
	requireAllFieldsSet(t, reflect.ValueOf(*core), "corev1.Event")
}

func requireAllFieldsSet(t *testing.T, v reflect.Value, name string) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		require.Falsef(t, v.Field(i).IsZero(), "%s.%s is not set by the conversion", name, f.Name)
	}
}

// filledCoreEvent returns a core/v1 Event in which every field, nested ones
// included, holds a distinct non-zero value.
func filledCoreEvent(t *testing.T) *corev1.Event {
	t.Helper()
	ev := &corev1.Event{}
	n := 0
	fill(reflect.ValueOf(ev).Elem(), &n)
	return ev
}

var (
	timeType      = reflect.TypeOf(metav1.Time{})
	microTimeType = reflect.TypeOf(metav1.MicroTime{})
)

// fill sets every settable field reachable from v to a non-zero value that
// differs from the others (n counts up), so a field carried into the wrong
// place shows up as a difference.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Type() {
	case timeType:
		v.Set(reflect.ValueOf(metav1.NewTime(t0.Add(time.Duration(*n) * time.Second))))
		return
	case microTimeType:
		v.Set(reflect.ValueOf(metav1.NewMicroTime(t0Micro.Add(time.Duration(*n) * time.Microsecond))))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + string(rune('a'+*n%26)) + strconv.Itoa(*n))
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(`{"f:n":{}}`))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), n)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		e := reflect.New(v.Type().Elem()).Elem()
		fill(k, n)
		fill(e, n)
		m.SetMapIndex(k, e)
		v.Set(m)
	default:
		panic("BUG: fill cannot set kind " + v.Kind().String())
	}
}

func ptr[T any](v T) *T { return &v }
