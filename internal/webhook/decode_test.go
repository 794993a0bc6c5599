package webhook

import (
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	sigsjson "sigs.k8s.io/json"
)

// decodeSeeds are the shapes FuzzDecodeMatchesKube starts from: the cases
// where encoding/json v1 and v2 are known to differ by default (repeated
// members, letter case, invalid UTF-8, null, numbers) on Event fields of
// every kind (strings, int32, times, micro-times, maps, nested pointers).
var decodeSeeds = []string{
	coreEvent(1),
	`{"apiVersion":"v1","kind":"Event","metadata":{"name":"a","labels":{"x":"1","x":"2"}},"reason":"A","reason":"B"}`,
	`{"metadata":{"name":"a","annotations":{"k":"v"}},"metadata":{"namespace":"n"}}`,
	`{"Reason":"upper","reason":"lower","METADATA":{"name":"x"}}`,
	"{\"message\":\"bad \xff utf8\",\"metadata\":{\"name\":\"\xc3\x28\"}}",
	`{"count":null,"series":null,"related":null,"metadata":null,"firstTimestamp":null}`,
	`{"count":1.0}`, `{"count":1e3}`, `{"count":-0}`, `{"count":2147483648}`, `{"count":"3"}`,
	`{"eventTime":"2026-11-25T10:00:00.123456Z","series":{"count":2,"lastObservedTime":"2026-11-25T10:00:01.5Z"}}`,
	`{"firstTimestamp":"not a time"}`, `{"firstTimestamp":""}`, `{"eventTime":""}`,
	`{"metadata":{"creationTimestamp":"2026-11-25T10:00:00Z","managedFields":[{"manager":"m","fieldsType":"FieldsV1","fieldsV1":{"f:reason":{}}}]}}`,
	`{"unknown":{"deep":[1,2,{"x":null}]},"reason":"R"}`,
	`{"reason":"\u0000\ud800\u00e9"}`,
	`{"regarding":{"kind":"Pod","name":"p"},"note":"n","deprecatedCount":3,"deprecatedSource":{"component":"c"}}`,
	`[]`, `null`, `"event"`, `{`, `{"reason":"a"} trailing`, ``, `{"reason":"a",}`,
}

// FuzzDecodeMatchesKube checks that the receiver's decoder accepts exactly
// what kube-apiserver's (sigs.k8s.io/json, case-sensitive) accepts, and
// reads it into the same Event, for both groups.
func FuzzDecodeMatchesKube(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		compareDecoders[corev1.Event](t, raw)
		compareDecoders[eventsv1.Event](t, raw)
	})
}

func TestDecodeMatchesKube(t *testing.T) {
	for i, s := range decodeSeeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			compareDecoders[corev1.Event](t, []byte(s))
			compareDecoders[eventsv1.Event](t, []byte(s))
		})
	}
}

func compareDecoders[T any](t *testing.T, raw []byte) {
	t.Helper()
	var want, got T
	wantErr := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &want)
	gotErr := decodeJSON(raw, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q into %T: kube's decoder says %v, ours %v", raw, want, wantErr, gotErr)
	}
	if wantErr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%q into %T:\nkube's decoder: %+v\nours:           %+v", raw, want, want, got)
	}
}
