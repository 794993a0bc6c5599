package event

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestEncodedObjectEncodesOnce: watches asking for the same encoding get the
// bytes of one encode; another identifier encodes again; a shared object
// is encoded from a copy, so an encoder that sets the kind (as the
// versioning codec does while it works) changes nothing the others see.
func TestEncodedObjectEncodesOnce(t *testing.T) {
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "n", ResourceVersion: "7"}, Reason: "R"}
	enc := &encodings{obj: ev, copy: true}
	var mu sync.Mutex
	calls := map[runtime.Identifier]int{}
	encoder := func(id runtime.Identifier) func(runtime.Object, io.Writer) error {
		return func(o runtime.Object, w io.Writer) error {
			mu.Lock()
			calls[id]++
			mu.Unlock()
			require.NotSame(t, ev, o, "a shared object is encoded from a copy")
			o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "Event"})
			_, err := io.WriteString(w, string(id)+":"+o.(*corev1.Event).Reason)
			return err
		}
	}
	var wg sync.WaitGroup
	out := make([]bytes.Buffer, 20)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := runtime.Identifier("json")
			if i%2 == 1 {
				id = "protobuf"
			}
			o := enc.object().(runtime.CacheableObject)
			require.NoError(t, o.CacheEncode(id, encoder(id), &out[i]))
		}()
	}
	wg.Wait()
	require.Equal(t, map[runtime.Identifier]int{"json": 1, "protobuf": 1}, calls)
	for i := range out {
		want := "json:R"
		if i%2 == 1 {
			want = "protobuf:R"
		}
		require.Equal(t, want, out[i].String())
	}
	require.Empty(t, ev.Kind, "the shared object is untouched")

	// Each watch has a kind of its own.
	a, b := enc.object(), enc.object()
	a.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Kind: "X"})
	require.Empty(t, b.GetObjectKind().GroupVersionKind().Kind)

	// A failed encoding fails every watch that asks for it, without retrying.
	boom := errors.New("boom")
	n := 0
	for range 2 {
		err := enc.object().(runtime.CacheableObject).CacheEncode("bad", func(runtime.Object, io.Writer) error { n++; return boom }, io.Discard)
		require.ErrorIs(t, err, boom)
	}
	require.Equal(t, 1, n)

	// An object of one watch's own is encoded as it is.
	own := &encodings{obj: ev}
	require.Same(t, ev, own.object().(runtime.CacheableObject).GetObject())
}

// TestTransformedEncodingsAreNotShared: an encoding that transforms the
// object for one watch (k8s.io/apiserver marks it "watch-embedded", as for
// tables) runs for every watch, since its encoder keeps state of its own.
func TestTransformedEncodingsAreNotShared(t *testing.T) {
	enc := &encodings{obj: &corev1.Event{}, copy: true}
	id := runtime.Identifier(`{"name":"watch","embeddedEncoder":"{\"name\":\"watch-embedded\",\"target\":\"meta.k8s.io/v1, Kind=Table\"}"}`)
	n := 0
	for range 3 {
		err := enc.object().(runtime.CacheableObject).CacheEncode(id, func(runtime.Object, io.Writer) error { n++; return nil }, io.Discard)
		require.NoError(t, err)
	}
	require.Equal(t, 3, n)
}
