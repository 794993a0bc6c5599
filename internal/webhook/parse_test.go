package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

var testLimits = Limits{MaxItemBytes: 4096, MaxItems: 100}

const (
	coreEv   = `{"apiVersion":"v1","kind":"Event","metadata":{"name":"a.1","namespace":"ns"},"involvedObject":{"kind":"Pod","name":"p","namespace":"ns"},"reason":"R","message":"m","count":1}`
	bareEv   = `{"metadata":{"name":"b.1","namespace":"ns"},"involvedObject":{"kind":"Pod","name":"p","namespace":"ns"},"reason":"R","count":3}`
	eventsEv = `{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"c.1","namespace":"ns"},"eventTime":"2026-01-01T00:00:00.000000Z","regarding":{"kind":"Pod","name":"p","namespace":"ns"},"note":"hello","reason":"R","action":"A","reportingController":"x.io/c","reportingInstance":"i","type":"Normal"}`
)

func TestParse(t *testing.T) {
	type want struct {
		name string // event name, or "" for a refused item
		op   eventlog.Op
		err  string // substring of the refusal
	}
	cases := []struct {
		name   string
		body   string
		ndjson bool
		want   []want
		err    string
	}{
		{name: "single core event", body: coreEv, want: []want{{name: "a.1", op: eventlog.OpCreate}}},
		{name: "bare event is core/v1 and count>1 is an update", body: bareEv, want: []want{{name: "b.1", op: eventlog.OpUpdate}}},
		{name: "events.k8s.io/v1 converted", body: eventsEv, want: []want{{name: "c.1", op: eventlog.OpCreate}}},
		{name: "core EventList", body: `{"apiVersion":"v1","kind":"EventList","items":[` + coreEv + `,` + bareEv + `]}`,
			want: []want{{name: "a.1", op: eventlog.OpCreate}, {name: "b.1", op: eventlog.OpUpdate}}},
		{name: "events EventList items inherit apiVersion",
			body: `{"apiVersion":"events.k8s.io/v1","kind":"EventList","items":[{"metadata":{"name":"d.1","namespace":"ns"},"note":"n"}]}`,
			want: []want{{name: "d.1", op: eventlog.OpCreate}}},
		{name: "array with a bad kind", body: `[` + coreEv + `,{"kind":"Pod"}]`,
			want: []want{{name: "a.1", op: eventlog.OpCreate}, {err: `items[1].kind: Unsupported value: "Pod"`}}},
		{name: "watch events", body: `[{"type":"DELETED","object":` + coreEv + `},{"type":"BOOKMARK","object":{}}]`,
			want: []want{{name: "a.1", op: eventlog.OpDelete}, {err: `items[1].type: Unsupported value: "BOOKMARK"`}}},
		{name: "ndjson with a broken line", ndjson: true, body: coreEv + "\n\n{not json\n" + bareEv + "\n",
			want: []want{{name: "a.1", op: eventlog.OpCreate}, {err: "items[1]: Invalid value"}, {name: "b.1", op: eventlog.OpUpdate}}},
		{name: "unsupported apiVersion", body: `{"apiVersion":"events.k8s.io/v1beta1","kind":"Event"}`,
			want: []want{{err: `items[0].apiVersion: Unsupported value: "events.k8s.io/v1beta1": supported values: "v1", "events.k8s.io/v1"`}}},
		{name: "wrong field type", body: `{"metadata":{"name":"x"},"count":"three"}`,
			want: []want{{err: "cannot decode as a core/v1 Event"}}},
		{name: "oversize item", body: `{"metadata":{"name":"x"},"message":"` + strings.Repeat("x", 5000) + `"}`,
			want: []want{{err: "at most 4096 allowed"}}},
		{name: "malformed body", body: `{"metadata":`, err: "not valid JSON"},
		{name: "malformed multi-line body", body: "{\n\"metadata\":", err: "not valid JSON"},
		{name: "ndjson labelled as JSON", body: coreEv + "\n" + bareEv,
			want: []want{{name: "a.1", op: eventlog.OpCreate}, {name: "b.1", op: eventlog.OpUpdate}}},
		{name: "empty body", body: "  ", err: "empty"},
		{name: "empty list", body: `{"kind":"EventList","apiVersion":"v1","items":[]}`, err: "no events"},
		{name: "too many", body: "[" + strings.TrimSuffix(strings.Repeat(coreEv+",", 101), ",") + "]", err: "more than 100 events"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			items, err := Parse([]byte(c.body), c.ndjson, testLimits)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Len(t, items, len(c.want))
			for i, w := range c.want {
				it := items[i]
				require.Equal(t, i, it.Index)
				if w.err != "" {
					require.NotNil(t, it.Err, "item %d", i)
					require.Contains(t, it.Err.Error(), w.err)
					continue
				}
				require.Nil(t, it.Err, "item %d", i)
				require.Equal(t, w.name, it.Event.Name)
				require.Equal(t, w.op, it.Op)
			}
		})
	}
}

func TestParseEventsV1Conversion(t *testing.T) {
	items, err := Parse([]byte(eventsEv), false, testLimits)
	require.NoError(t, err)
	ev := items[0].Event
	require.Equal(t, eventsv1.SchemeGroupVersion, items[0].GroupVersion)
	require.Equal(t, "hello", ev.Message, "note becomes message")
	require.Equal(t, "p", ev.InvolvedObject.Name, "regarding becomes involvedObject")
	require.Equal(t, "x.io/c", ev.ReportingController)
}

// FuzzParse checks that the body parser never panics, accounts for every
// item exactly once, and that whatever it accepts is a usable event.
func FuzzParse(f *testing.F) {
	for _, s := range []string{coreEv, bareEv, eventsEv, "[" + coreEv + "," + bareEv + "]",
		`{"apiVersion":"v1","kind":"EventList","items":[` + coreEv + `]}`, `{"type":"ADDED","object":` + eventsEv + `}`,
		"{", "[]", `{"kind":"EventList","items":[{"kind":"EventList","items":[1]}]}`, "null", `"x"`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s+"\n"+s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		items, err := Parse(body, ndjson, testLimits)
		if err != nil {
			require.Nil(t, items)
			return
		}
		require.NotEmpty(t, items)
		require.LessOrEqual(t, len(items), testLimits.MaxItems)
		for i, it := range items {
			require.Equal(t, i, it.Index)
			if it.Err != nil {
				require.Nil(t, it.Event)
				require.True(t, strings.HasPrefix(it.Err.Field, "items["), "refusal names its item: %q", it.Err.Field)
				continue
			}
			require.NotNil(t, it.Event)
			require.LessOrEqual(t, len(it.Raw), testLimits.MaxItemBytes)
			require.Contains(t, []eventlog.Op{eventlog.OpCreate, eventlog.OpUpdate, eventlog.OpDelete}, it.Op)
			require.Contains(t, []string{corev1.SchemeGroupVersion.String(), eventsv1.SchemeGroupVersion.String()}, it.GroupVersion.String())
			// An accepted item re-encodes as JSON.
			_, err := json.Marshal(it.Event)
			require.NoError(t, err)
		}
	})
}
