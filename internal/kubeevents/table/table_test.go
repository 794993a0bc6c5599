package table

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/kubeevents/conversion"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// now is the fixed time every age in these tests is measured at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time           { return metav1.NewTime(now.Add(-d)) }
func microAgo(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(now.Add(-d)) }

const day = 24 * time.Hour

// realisticEvents returns Events as real clusters store them, with the row
// kubectl shows for each at now (the wide table's cells, in column order).
func realisticEvents() ([]corev1.Event, [][]interface{}) {
	events := []corev1.Event{
		{
			// The kubelet, through core/v1, repeating an event by count.
			ObjectMeta: metav1.ObjectMeta{Name: "web-0.17f3c2a1b2c3d4e5", Namespace: "default", ResourceVersion: "101", UID: "e1"},
			InvolvedObject: corev1.ObjectReference{
				Kind: "Pod", Namespace: "default", Name: "web-0", UID: "a1b2", APIVersion: "v1",
				ResourceVersion: "1234", FieldPath: "spec.containers{app}",
			},
			Reason:         "BackOff",
			Message:        "Back-off restarting failed container app in pod web-0_default(a1b2)",
			Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
			FirstTimestamp: ago(2 * time.Hour),
			LastTimestamp:  ago(3*time.Minute + 12*time.Second),
			Count:          42,
			Type:           corev1.EventTypeWarning,
		},
		{
			// The scheduler, through events.k8s.io/v1, repeating by series.
			ObjectMeta:          metav1.ObjectMeta{Name: "web-1.17f3c2a1b2c3d4e6", Namespace: "default", ResourceVersion: "102", UID: "e2"},
			InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", UID: "c3d4", APIVersion: "v1", ResourceVersion: "1240"},
			Reason:              "FailedScheduling",
			Message:             "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
			Type:                corev1.EventTypeWarning,
			EventTime:           microAgo(26 * time.Hour),
			Series:              &corev1.EventSeries{Count: 5, LastObservedTime: microAgo(90 * time.Second)},
			Action:              "Scheduling",
			ReportingController: "default-scheduler",
			ReportingInstance:   "default-scheduler-cp-1",
		},
		{
			// A Node event: the involved object has no namespace.
			ObjectMeta:     metav1.ObjectMeta{Name: "node-1.17f3c2a1b2c3d4e7", Namespace: "default", ResourceVersion: "103", UID: "e3"},
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node-1", UID: "node-1"},
			Reason:         "NodeReady",
			Message:        "Node node-1 status is now: NodeReady",
			Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
			FirstTimestamp: ago(5*day + 3*time.Hour),
			LastTimestamp:  ago(5*day + 3*time.Hour),
			Count:          1,
			Type:           corev1.EventTypeNormal,
		},
		{
			// A container event: the sub-object is a field path.
			ObjectMeta: metav1.ObjectMeta{Name: "web-0.17f3c2a1b2c3d4e8", Namespace: "default", ResourceVersion: "104", UID: "e4"},
			InvolvedObject: corev1.ObjectReference{
				Kind: "Pod", Namespace: "default", Name: "web-0", UID: "a1b2", APIVersion: "v1",
				FieldPath: "spec.initContainers{init-db}",
			},
			Reason:              "Pulled",
			Message:             `Successfully pulled image "postgres:16" in 1.2s (1.2s including waiting). Image size: 151234567 bytes.`,
			Source:              corev1.EventSource{Component: "kubelet", Host: "node-2"},
			FirstTimestamp:      ago(45 * time.Second),
			LastTimestamp:       ago(45 * time.Second),
			Count:               1,
			Type:                corev1.EventTypeNormal,
			ReportingController: "kubelet",
			ReportingInstance:   "node-2",
		},
		{
			// An events.k8s.io/v1 singleton: no series, no count.
			ObjectMeta:          metav1.ObjectMeta{Name: "web-2.17f3c2a1b2c3d4e9", Namespace: "default", ResourceVersion: "105", UID: "e5"},
			InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-2", APIVersion: "v1"},
			Reason:              "Scheduled",
			Message:             "Successfully assigned default/web-2 to node-3",
			Type:                corev1.EventTypeNormal,
			EventTime:           microAgo(7 * time.Minute),
			Action:              "Binding",
			ReportingController: "default-scheduler",
			ReportingInstance:   "default-scheduler-cp-1",
		},
		{
			// A controller without a host; years-old timestamps.
			ObjectMeta:     metav1.ObjectMeta{Name: "web.17f3c2a1b2c3d4ea", Namespace: "default", ResourceVersion: "106", UID: "e6"},
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: "default", Name: "web", APIVersion: "apps/v1"},
			Reason:         "ScalingReplicaSet",
			Message:        "Scaled up replica set web-7d4b9c8f5 from 0 to 3",
			Source:         corev1.EventSource{Component: "deployment-controller"},
			FirstTimestamp: ago(800 * day),
			LastTimestamp:  ago(400 * day),
			Count:          2,
			Type:           corev1.EventTypeNormal,
		},
		{
			// No times at all, an unnamed object, and white space around the
			// message.
			ObjectMeta:     metav1.ObjectMeta{Name: "odd.1", Namespace: "default", ResourceVersion: "107", UID: "e7"},
			InvolvedObject: corev1.ObjectReference{Kind: "Namespace"},
			Reason:         "Odd",
			Message:        "  \n padded message\t\n",
			Type:           corev1.EventTypeNormal,
		},
		{
			// Clock skew: times in the future.
			ObjectMeta:          metav1.ObjectMeta{Name: "skew.1", Namespace: "default", ResourceVersion: "108", UID: "e8"},
			InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-3"},
			Reason:              "Skewed",
			Message:             "from the future",
			Source:              corev1.EventSource{Host: "node-4"},
			FirstTimestamp:      ago(-500 * time.Millisecond),
			LastTimestamp:       ago(-30 * time.Second),
			Count:               7,
			Type:                corev1.EventTypeWarning,
			ReportingController: "kubelet",
		},
	}
	cells := [][]interface{}{
		{"3m12s", "Warning", "BackOff", "pod/web-0", "spec.containers{app}", "kubelet, node-1", "Back-off restarting failed container app in pod web-0_default(a1b2)", "120m", int64(42), "web-0.17f3c2a1b2c3d4e5"},
		{"90s", "Warning", "FailedScheduling", "pod/web-1", "", "default-scheduler, default-scheduler-cp-1", "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.", "26h", int64(5), "web-1.17f3c2a1b2c3d4e6"},
		{"5d3h", "Normal", "NodeReady", "node/node-1", "", "kubelet, node-1", "Node node-1 status is now: NodeReady", "5d3h", int64(1), "node-1.17f3c2a1b2c3d4e7"},
		{"45s", "Normal", "Pulled", "pod/web-0", "spec.initContainers{init-db}", "kubelet, node-2", `Successfully pulled image "postgres:16" in 1.2s (1.2s including waiting). Image size: 151234567 bytes.`, "45s", int64(1), "web-0.17f3c2a1b2c3d4e8"},
		{"7m", "Normal", "Scheduled", "pod/web-2", "", "default-scheduler, default-scheduler-cp-1", "Successfully assigned default/web-2 to node-3", "7m", int64(1), "web-2.17f3c2a1b2c3d4e9"},
		{"400d", "Normal", "ScalingReplicaSet", "deployment/web", "", "deployment-controller", "Scaled up replica set web-7d4b9c8f5 from 0 to 3", "2y70d", int64(2), "web.17f3c2a1b2c3d4ea"},
		{"<unknown>", "Normal", "Odd", "namespace", "", "", "padded message", "<unknown>", int64(1), "odd.1"},
		{"<invalid>", "Warning", "Skewed", "pod/web-3", "", "kubelet, node-4", "from the future", "0s", int64(7), "skew.1"},
	}
	return events, cells
}

func TestColumnDefinitions(t *testing.T) {
	cols := ColumnDefinitions()
	type col struct {
		Name, Type, Format string
		Priority           int32
	}
	var got []col
	for _, c := range cols {
		got = append(got, col{c.Name, c.Type, c.Format, c.Priority})
		require.NotEmpty(t, c.Description, c.Name)
	}
	require.Equal(t, []col{
		{"Last Seen", "string", "", 0},
		{"Type", "string", "", 0},
		{"Reason", "string", "", 0},
		{"Object", "string", "", 0},
		{"Subobject", "string", "", 1},
		{"Source", "string", "", 1},
		{"Message", "string", "", 0},
		{"First Seen", "string", "", 1},
		{"Count", "string", "", 1},
		{"Name", "string", "name", 1},
	}, got)
	require.Equal(t, "The time at which the most recent occurrence of this event was recorded.", cols[0].Description)
	require.Equal(t, "The number of times this event has occurred.", cols[8].Description)

	cols[0].Name = "changed"
	require.Equal(t, "Last Seen", ColumnDefinitions()[0].Name, "each call returns a fresh slice")
}

func TestRows(t *testing.T) {
	events, want := realisticEvents()
	rows, err := Rows(events, now)
	require.NoError(t, err)
	require.Len(t, rows, len(want))
	for i, row := range rows {
		require.Equal(t, want[i], row.Cells, events[i].Name)
		require.Same(t, &events[i], row.Object.Object, "row %d carries its event", i)
	}

	rows, err = Rows(nil, now)
	require.NoError(t, err)
	require.Empty(t, rows)
}

func TestCells(t *testing.T) {
	tests := []struct {
		name string
		ev   corev1.Event
		want map[int]interface{} // column index -> cell
	}{
		{
			name: "first seen falls back to eventTime",
			ev:   corev1.Event{EventTime: microAgo(90 * time.Second), LastTimestamp: ago(10 * time.Second)},
			want: map[int]interface{}{0: "10s", 7: "90s"},
		},
		{
			name: "last seen falls back to first seen",
			ev:   corev1.Event{FirstTimestamp: ago(3 * time.Hour)},
			want: map[int]interface{}{0: "3h", 7: "3h"},
		},
		{
			name: "firstTimestamp wins over eventTime",
			ev:   corev1.Event{FirstTimestamp: ago(time.Hour), EventTime: microAgo(2 * time.Hour)},
			want: map[int]interface{}{0: "60m", 7: "60m"},
		},
		{
			name: "series wins over lastTimestamp and count",
			ev: corev1.Event{
				LastTimestamp: ago(time.Hour), Count: 9,
				Series: &corev1.EventSeries{Count: 3, LastObservedTime: microAgo(4 * time.Minute)},
			},
			want: map[int]interface{}{0: "4m", 7: "<unknown>", 8: int64(3)},
		},
		{
			name: "series without lastObservedTime",
			ev:   corev1.Event{LastTimestamp: ago(time.Hour), Series: &corev1.EventSeries{Count: 2}},
			want: map[int]interface{}{0: "<unknown>", 8: int64(2)},
		},
		{
			name: "zero count shows as one",
			ev:   corev1.Event{},
			want: map[int]interface{}{8: int64(1)},
		},
		{
			name: "negative count is shown as is",
			ev:   corev1.Event{Count: -2},
			want: map[int]interface{}{8: int64(-2)},
		},
		{
			name: "kind is lower-cased",
			ev:   corev1.Event{InvolvedObject: corev1.ObjectReference{Kind: "ReplicaSet", Name: "Web-7D4"}},
			want: map[int]interface{}{3: "replicaset/Web-7D4"},
		},
		{
			name: "name without kind",
			ev:   corev1.Event{InvolvedObject: corev1.ObjectReference{Name: "web"}},
			want: map[int]interface{}{3: "/web"},
		},
		{
			name: "source component wins over reporting controller",
			ev:   corev1.Event{Source: corev1.EventSource{Component: "kubelet"}, ReportingController: "other", ReportingInstance: "node-9"},
			want: map[int]interface{}{5: "kubelet, node-9"},
		},
		{
			name: "reporting controller alone",
			ev:   corev1.Event{ReportingController: "example.com/ctrl"},
			want: map[int]interface{}{5: "example.com/ctrl"},
		},
		{
			name: "instance without component",
			ev:   corev1.Event{ReportingInstance: "node-9"},
			want: map[int]interface{}{5: ", node-9"},
		},
		{
			name: "age boundaries",
			ev:   corev1.Event{FirstTimestamp: ago(119*time.Second + 999*time.Millisecond), LastTimestamp: ago(2 * time.Minute)},
			want: map[int]interface{}{0: "2m", 7: "119s"},
		},
		{
			name: "just in the future is now",
			ev:   corev1.Event{FirstTimestamp: ago(-1999 * time.Millisecond), LastTimestamp: ago(-2 * time.Second)},
			want: map[int]interface{}{0: "<invalid>", 7: "0s"},
		},
		{
			name: "sub-second ages of eventTime",
			ev:   corev1.Event{EventTime: microAgo(999 * time.Millisecond)},
			want: map[int]interface{}{0: "0s", 7: "0s"},
		},
		{
			name: "hours and days",
			ev:   corev1.Event{FirstTimestamp: ago(7*day + 23*time.Hour), LastTimestamp: ago(7*time.Hour + 59*time.Minute)},
			want: map[int]interface{}{0: "7h59m", 7: "7d23h"},
		},
		{
			name: "years",
			ev:   corev1.Event{FirstTimestamp: ago(9 * 365 * day), LastTimestamp: ago(730 * day)},
			want: map[int]interface{}{0: "2y", 7: "9y"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cells := Cells(&tc.ev, now)
			require.Len(t, cells, len(ColumnDefinitions()))
			for i, want := range tc.want {
				require.Equal(t, want, cells[i], "column %s", ColumnDefinitions()[i].Name)
			}
		})
	}
}

// fixedConvertor measures ages at now and maps events.k8s.io/v1 Events to
// core/v1 with the conversion the apiserver wires in, so the events.k8s.io
// tests see the same rows a client would.
func fixedConvertor() TableConvertor {
	c := NewTableConvertor(conversion.FromEventsV1)
	c.Now = func() time.Time { return now }
	return c
}

func allCells(tbl *metav1.Table) [][]interface{} {
	var out [][]interface{}
	for _, r := range tbl.Rows {
		out = append(out, r.Cells)
	}
	return out
}

func TestConvertToTableCoreList(t *testing.T) {
	events, want := realisticEvents()
	remaining := int64(12)
	list := &corev1.EventList{
		ListMeta: metav1.ListMeta{ResourceVersion: "108", Continue: "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTA4fQ", RemainingItemCount: &remaining},
		Items:    events,
	}
	tbl, err := fixedConvertor().ConvertToTable(context.Background(), list, nil)
	require.NoError(t, err)
	require.Equal(t, ColumnDefinitions(), tbl.ColumnDefinitions)
	require.Equal(t, want, allCells(tbl))
	require.Equal(t, "108", tbl.ResourceVersion)
	require.Equal(t, list.Continue, tbl.Continue)
	require.Equal(t, int64(12), *tbl.RemainingItemCount)
	require.Same(t, &list.Items[2], tbl.Rows[2].Object.Object)
}

func TestConvertToTableSingle(t *testing.T) {
	events, want := realisticEvents()
	tbl, err := fixedConvertor().ConvertToTable(context.Background(), &events[1], &metav1.TableOptions{})
	require.NoError(t, err)
	require.Len(t, tbl.ColumnDefinitions, 10)
	require.Equal(t, [][]interface{}{want[1]}, allCells(tbl))
	require.Equal(t, "102", tbl.ResourceVersion, "a single object's table carries its resourceVersion")
	require.Empty(t, tbl.Continue)
	require.Nil(t, tbl.RemainingItemCount)
	require.Same(t, &events[1], tbl.Rows[0].Object.Object)
}

func TestConvertToTableNoHeaders(t *testing.T) {
	events, want := realisticEvents()
	tbl, err := fixedConvertor().ConvertToTable(context.Background(), &corev1.EventList{Items: events}, &metav1.TableOptions{NoHeaders: true})
	require.NoError(t, err)
	require.Nil(t, tbl.ColumnDefinitions)
	require.Equal(t, want, allCells(tbl), "rows keep every cell without headers")
}

func TestConvertToTableEventsV1(t *testing.T) {
	events, want := realisticEvents()
	remaining := int64(1)
	list := &eventsv1.EventList{ListMeta: metav1.ListMeta{ResourceVersion: "108", Continue: "c", RemainingItemCount: &remaining}}
	for i := range events {
		list.Items = append(list.Items, *conversion.ToEventsV1(&events[i]))
	}
	c := fixedConvertor()

	tbl, err := c.ConvertToTable(context.Background(), list, nil)
	require.NoError(t, err)
	require.Equal(t, ColumnDefinitions(), tbl.ColumnDefinitions, "the same columns as core/v1")
	require.Equal(t, want, allCells(tbl), "the same cells as core/v1")
	require.Equal(t, "108", tbl.ResourceVersion)
	require.Equal(t, "c", tbl.Continue)
	require.Equal(t, int64(1), *tbl.RemainingItemCount)
	for i := range tbl.Rows {
		require.Same(t, &list.Items[i], tbl.Rows[i].Object.Object, "rows carry the events.k8s.io/v1 object")
	}

	tbl, err = c.ConvertToTable(context.Background(), &list.Items[0], nil)
	require.NoError(t, err)
	require.Equal(t, [][]interface{}{want[0]}, allCells(tbl))
	require.Equal(t, "101", tbl.ResourceVersion)
}

func TestConvertToTableErrors(t *testing.T) {
	c := fixedConvertor()
	_, err := c.ConvertToTable(context.Background(), &corev1.EventList{}, &metav1.ListOptions{})
	require.EqualError(t, err, "unrecognized type *v1.ListOptions for table options, can't display tabular output")

	_, err = c.ConvertToTable(context.Background(), &corev1.Pod{}, nil)
	require.EqualError(t, err, "no table handler registered for this type *v1.Pod")

	_, err = TableConvertor{}.ConvertToTable(context.Background(), &eventsv1.Event{}, nil)
	require.Error(t, err, "events.k8s.io/v1 needs ToCore")

	nilCore := TableConvertor{ToCore: func(*eventsv1.Event) *corev1.Event { return nil }}
	_, err = nilCore.ConvertToTable(context.Background(), &eventsv1.EventList{Items: []eventsv1.Event{{}}}, nil)
	require.Error(t, err)

	// A nil *TableOptions is accepted, as in kube.
	tbl, err := c.ConvertToTable(context.Background(), &corev1.EventList{}, (*metav1.TableOptions)(nil))
	require.NoError(t, err)
	require.Len(t, tbl.ColumnDefinitions, 10)
	require.Empty(t, tbl.Rows)
}

func TestConvertToTableUsesTheClock(t *testing.T) {
	ev := &corev1.Event{LastTimestamp: metav1.NewTime(time.Now().Add(-3 * time.Hour))}
	tbl, err := TableConvertor{}.ConvertToTable(context.Background(), ev, nil)
	require.NoError(t, err)
	require.Equal(t, "3h", tbl.Rows[0].Cells[0])
}

// TestGoldenTable pins the whole Table, as JSON, that a list of realistic
// Events turns into. Run with -update to rewrite testdata after an
// intended change, and review the diff.
func TestGoldenTable(t *testing.T) {
	events, _ := realisticEvents()
	list := &corev1.EventList{ListMeta: metav1.ListMeta{ResourceVersion: "108"}, Items: events}
	tbl, err := fixedConvertor().ConvertToTable(context.Background(), list, nil)
	require.NoError(t, err)
	// What the apiserver's default includeObject=Metadata makes of the rows.
	for i := range tbl.Rows {
		m := tbl.Rows[i].Object.Object.(*corev1.Event).ObjectMeta
		tbl.Rows[i].Object = runtime.RawExtension{Object: &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"},
			ObjectMeta: m,
		}}
	}
	tbl.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}
	got, err := json.MarshalIndent(tbl, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')

	path := filepath.Join("testdata", "events-table.golden.json")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create the golden file")
	require.Equal(t, string(want), string(got))
}
