package apiserverbench

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/eventpipe/eventpipe/bench/internal/load"
)

// protobufWatchFrame encodes ev as one frame of a protobuf watch stream, as
// k8s.io/apiserver does: a metav1.WatchEvent whose object is the event in
// Kubernetes' protobuf envelope.
func protobufWatchFrame(t testing.TB, typ string, obj runtime.Object) []byte {
	enc := scheme.Codecs.EncoderForVersion(protobuf.NewSerializer(scheme.Scheme, scheme.Scheme), corev1.SchemeGroupVersion)
	raw, err := runtime.Encode(enc, obj)
	if err != nil {
		t.Fatal(err)
	}
	we := metav1.WatchEvent{Type: typ, Object: runtime.RawExtension{Raw: raw}}
	frame, err := we.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return frame
}

func TestWatchEventParts(t *testing.T) {
	f := load.NewEventFactory()
	ev, _ := f.Next()
	ev.Annotations[annRun] = "run-1"
	ev.Labels = map[string]string{"app": "web"}
	ev.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate}}

	typ, kind, meta, err := watchEventParts(protobufWatchFrame(t, "MODIFIED", ev))
	if err != nil {
		t.Fatal(err)
	}
	if string(typ) != "MODIFIED" || string(kind) != "Event" {
		t.Fatalf("type %q kind %q, want MODIFIED Event", typ, kind)
	}
	name, ann, err := eventMeta(meta)
	if err != nil {
		t.Fatal(err)
	}
	if string(name) != ev.Name || string(ann.run) != "run-1" || string(ann.seq) != ev.Annotations[load.AnnSeq] || string(ann.sent) != ev.Annotations[load.AnnSent] {
		t.Fatalf("got name %q run %q seq %q sent %q, want %q %q %q %q", name, ann.run, ann.seq, ann.sent,
			ev.Name, "run-1", ev.Annotations[load.AnnSeq], ev.Annotations[load.AnnSent])
	}

	// The watchers share the garbage collector with an in-process server.
	frame := protobufWatchFrame(t, "ADDED", ev)
	if n := testing.AllocsPerRun(100, func() {
		_, _, meta, _ := watchEventParts(frame)
		_, _, _ = eventMeta(meta)
	}); n != 0 {
		t.Fatalf("reading an event allocates %v times, want 0", n)
	}

	_, kind, _, err = watchEventParts(protobufWatchFrame(t, "ERROR", &metav1.Status{Status: metav1.StatusFailure, Code: 410}))
	if err != nil || string(kind) != "Status" {
		t.Fatalf("error event: kind %q, err %v; want Status", kind, err)
	}
}

// FuzzWatchEventParts: any frame gives parts or an error, never a panic,
// and a real frame gives its event's name.
func FuzzWatchEventParts(f *testing.F) {
	ev, _ := load.NewEventFactory().Next()
	f.Add(protobufWatchFrame(f, "ADDED", ev))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x05, 'A', 'D', 'D', 'E', 'D', 0x12, 0xff})
	f.Fuzz(func(t *testing.T, frame []byte) {
		_, _, meta, err := watchEventParts(frame)
		if err != nil {
			return
		}
		_, _, _ = eventMeta(meta)
	})
}
