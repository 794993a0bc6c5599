package apiserver

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/eventpipe/eventpipe/internal/kubeevents/core"
)

// The request decoders of both groups decode into the internal Event, as
// kube-apiserver's do (handlers decode into storage's New()).
func TestDecodeIntoInternalEvent(t *testing.T) {
	dec := Codecs.DecoderToVersion(Codecs.UniversalDeserializer(), schema.GroupVersion{Version: runtime.APIVersionInternal})

	obj, gvk, err := dec.Decode([]byte(`{"apiVersion":"v1","kind":"Event","metadata":{"name":"a"},"reason":"R","message":"M"}`), nil, &core.Event{})
	require.NoError(t, err)
	require.Equal(t, corev1.SchemeGroupVersion.WithKind("Event"), *gvk)
	require.Equal(t, "M", obj.(*core.Event).Message)

	// An events.k8s.io/v1 body converts (kube's handler then refuses it on a
	// core/v1 endpoint because of its group version, not because of a
	// missing conversion).
	obj, gvk, err = dec.Decode([]byte(`{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"a"},"note":"N","regarding":{"kind":"Pod"},"deprecatedCount":3}`), nil, &core.Event{})
	require.NoError(t, err)
	require.Equal(t, eventsv1.SchemeGroupVersion.WithKind("Event"), *gvk)
	ev := obj.(*core.Event)
	require.Equal(t, "N", ev.Message)
	require.Equal(t, "Pod", ev.InvolvedObject.Kind)
	require.EqualValues(t, 3, ev.Count)

	// Another kind is refused with kube-apiserver's words, which name its
	// internal type core.Event.
	_, _, err = dec.Decode([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`), nil, &core.Event{})
	require.ErrorContains(t, err, "converting (v1.Pod) to (core.Event): unknown conversion")
}

func TestEncodeInternalEventPerGroup(t *testing.T) {
	ev := &core.Event{Message: "M", Count: 2}
	ev.Name = "a"
	for gv, want := range map[schema.GroupVersion]map[string]any{
		corev1.SchemeGroupVersion:   {"apiVersion": "v1", "kind": "Event", "message": "M", "count": float64(2)},
		eventsv1.SchemeGroupVersion: {"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "M", "deprecatedCount": float64(2)},
	} {
		b, err := runtime.Encode(Codecs.LegacyCodec(gv), ev.DeepCopyObject())
		require.NoError(t, err, gv)
		var got map[string]any
		require.NoError(t, json.Unmarshal(b, &got))
		for k, v := range want {
			require.Equal(t, v, got[k], "%s: %s in %s", gv, k, b)
		}
	}
}
