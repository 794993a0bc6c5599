package eventlog

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/scope"
)

func TestRecordRoundTrip(t *testing.T) {
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web.1", UID: "u", ResourceVersion: "999"},
		Reason: "Started", Count: 2}
	rec := &Record{Key: Key{Scope: scope.Scope{Type: scope.TypeProject, Name: "a"}, Namespace: "prod", Name: "web.1"}, Op: OpUpdate, Event: ev}
	m, err := EncodeMsg(rec)
	require.NoError(t, err)
	require.Equal(t, "999", ev.ResourceVersion, "encoding leaves the caller's object alone")
	back, err := DecodeMsg(m.Subject, m.Header, m.Data, 42)
	require.NoError(t, err)
	require.Equal(t, OpUpdate, back.Op)
	require.Equal(t, "42", back.Event.ResourceVersion, "resourceVersion is the stream sequence")
	require.Equal(t, rec.Key, back.Key)
	require.Equal(t, "Started", back.Event.Reason)

	_, err = EncodeMsg(&Record{Key: Key{Scope: scope.Platform, Namespace: "other", Name: "web.1"}, Op: OpCreate, Event: ev})
	require.ErrorContains(t, err, "does not match key")
	_, err = EncodeMsg(&Record{Key: rec.Key, Op: Op(9), Event: ev})
	require.ErrorContains(t, err, "unknown operation")
}

func TestDecodeMsgRejects(t *testing.T) {
	good, err := EncodeMsg(&Record{Key: Key{Scope: scope.Platform, Namespace: "ns", Name: "n"}, Op: OpCreate,
		Event: &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "n"}}})
	require.NoError(t, err)
	hdr := func(op, codec string) nats.Header { return nats.Header{HeaderOp: {op}, HeaderCodec: {codec}} }
	cases := map[string]struct {
		subj string
		hdr  nats.Header
		data []byte
		want string
	}{
		"bad subject":      {"events.x", good.Header, good.Data, "parse subject"},
		"bad op":           {good.Subject, hdr("boom", codecProtoV1), good.Data, "unknown operation"},
		"bad codec":        {good.Subject, hdr("create", "json"), good.Data, "unknown codec"},
		"garbage body":     {good.Subject, good.Header, []byte("{not proto"), "unmarshal event"},
		"subject mismatch": {"events.Platform._.ns.other", good.Header, good.Data, "does not match subject"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeMsg(c.subj, c.hdr, c.data, 1)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func FuzzDecodeMsg(f *testing.F) {
	good, _ := EncodeMsg(&Record{Key: Key{Scope: scope.Platform, Namespace: "ns", Name: "n"}, Op: OpCreate,
		Event: &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "n"}, Message: "hello"}})
	f.Add(good.Subject, "create", good.Data)
	f.Add("events.Project.a.ns.n", "update", []byte{0x0a, 0x02})
	f.Fuzz(func(t *testing.T, subj, op string, data []byte) {
		rec, err := DecodeMsg(subj, nats.Header{HeaderOp: {op}, HeaderCodec: {codecProtoV1}}, data, 7)
		if err != nil {
			return
		}
		// Whatever decodes is a consistent record that encodes again.
		if rec.Event.Namespace != rec.Key.Namespace || rec.Event.Name != rec.Key.Name {
			t.Fatalf("decoded record disagrees with its key: %+v", rec.Key)
		}
		if _, err := EncodeMsg(rec); err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
	})
}

// TestRecordPrev: an update can carry the state it replaced, which comes
// back whole (without a resourceVersion of its own); nothing else can.
func TestRecordPrev(t *testing.T) {
	key := Key{Scope: scope.Platform, Namespace: "prod", Name: "web.1"}
	cur := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web.1", Labels: map[string]string{"app": "api"}}, Type: "Warning", Count: 3}
	prev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web.1", ResourceVersion: "41", Labels: map[string]string{"app": "web"}}, Type: "Normal", Count: 2}
	m, err := EncodeMsg(&Record{Key: key, Op: OpUpdate, Event: cur, Prev: prev})
	require.NoError(t, err)
	require.Equal(t, "41", prev.ResourceVersion, "encoding leaves the caller's object alone")
	back, err := DecodeMsg(m.Subject, m.Header, m.Data, 42)
	require.NoError(t, err)
	require.NotNil(t, back.Prev)
	require.Equal(t, map[string]string{"app": "web"}, back.Prev.Labels)
	require.Equal(t, "Normal", back.Prev.Type)
	require.EqualValues(t, 2, back.Prev.Count)
	require.Empty(t, back.Prev.ResourceVersion)

	m, err = EncodeMsg(&Record{Key: key, Op: OpUpdate, Event: cur})
	require.NoError(t, err)
	require.Empty(t, m.Header.Get(HeaderPrev), "no previous state, no header")
	back, err = DecodeMsg(m.Subject, m.Header, m.Data, 43)
	require.NoError(t, err)
	require.Nil(t, back.Prev)

	_, err = EncodeMsg(&Record{Key: key, Op: OpCreate, Event: cur, Prev: prev})
	require.ErrorContains(t, err, "only an update replaces a state")

	m, err = EncodeMsg(&Record{Key: key, Op: OpUpdate, Event: cur})
	require.NoError(t, err)
	m.Header.Set(HeaderPrev, "not base64!")
	_, err = DecodeMsg(m.Subject, m.Header, m.Data, 44)
	require.ErrorContains(t, err, HeaderPrev)
}
