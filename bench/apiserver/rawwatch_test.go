package apiserverbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/bench/internal/load"
)

var watchClient = flag.String("apibench.watch-client", "raw",
	"how watchers read their watch: raw (the stream client-go asks for, read frame by frame, with only each event's type, name and annotations decoded) or client-go (client-go's watch decoder, every event decoded into a corev1.Event, as an informer does)")

// eventStream is one watcher's open watch.
type eventStream interface {
	// receive records the watch's deliveries in w until the watch ends.
	receive(w *watcherState, run string, warm uint64, stopping *atomic.Bool)
	stop()
}

// openWatch opens a watch of events in ns ("" for all) from
// resourceVersion rv, of the kind -apibench.watch-client names. cs is the
// watcher's client; the raw stream opens a connection of its own, as cs
// has one.
func openWatch(ctx context.Context, s *server, cs *kubernetes.Clientset, ct, ns, rv string) (eventStream, error) {
	switch *watchClient {
	case "client-go":
		wi, err := cs.CoreV1().Events(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		if err != nil {
			return nil, err
		}
		return clientGoStream{wi}, nil
	case "raw":
		return openRawWatch(ctx, s, ct, ns, rv)
	}
	return nil, fmt.Errorf("-apibench.watch-client=%q: want raw or client-go", *watchClient)
}

// rawStream reads a watch response as client-go would receive it, but
// decodes of each event only what the benchmark needs (its type, name and
// annotations), in the goroutine that reads the body: the watchers share
// the machine with the server under test, and client-go's decoder in 100
// watchers would take a large share of its CPU.
type rawStream struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	proto  bool
}

func openRawWatch(ctx context.Context, s *server, ct, ns, rv string) (*rawStream, error) {
	hc, base, err := load.RawClient(s.config)
	if err != nil {
		return nil, err
	}
	path := "/api/v1/events"
	if ns != "" {
		path = "/api/v1/namespaces/" + ns + "/events"
	}
	q := url.Values{"watch": {"true"}, "resourceVersion": {rv}}
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?"+q.Encode(), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", ct)
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("watch %s: %s: %q", path, resp.Status, b)
	}
	proto := strings.HasPrefix(resp.Header.Get("Content-Type"), load.ContentProtobuf)
	if !proto && !strings.HasPrefix(resp.Header.Get("Content-Type"), load.ContentJSON) {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("watch %s: unexpected content type %q", path, resp.Header.Get("Content-Type"))
	}
	return &rawStream{body: resp.Body, cancel: cancel, proto: proto}, nil
}

func (r *rawStream) stop() { r.cancel() }

func (r *rawStream) receive(w *watcherState, run string, warm uint64, stopping *atomic.Bool) {
	defer w.closed.Store(true)
	defer r.body.Close()
	var err error
	if r.proto {
		err = r.receiveProtobuf(w, run, warm)
	} else {
		err = r.receiveJSON(w, run, warm)
	}
	if err != nil && !stopping.Load() {
		w.errors = append(w.errors, err.Error())
	}
}

// receiveProtobuf reads the protobuf watch stream: frames of a 4-byte
// big-endian length and a metav1.WatchEvent, whose object is an Event in
// Kubernetes' protobuf envelope (runtime.Unknown after a magic prefix). It
// reads the few fields it needs straight from the wire, without allocating:
// what the watchers allocate is collected by the same garbage collector as
// the server's in-process runs.
func (r *rawStream) receiveProtobuf(w *watcherState, run string, warm uint64) error {
	br := bufio.NewReaderSize(r.body, 64<<10)
	var hdr [4]byte
	var frame []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if cap(frame) < int(n) {
			frame = make([]byte, n)
		}
		frame = frame[:n]
		if _, err := io.ReadFull(br, frame); err != nil {
			return err
		}
		now := time.Now()
		typ, kind, meta, err := watchEventParts(frame)
		if err != nil {
			return err
		}
		switch watch.EventType(typ) {
		case watch.Bookmark:
			continue
		case watch.Error:
			w.errors = append(w.errors, fmt.Sprintf("ERROR event of kind %q", kind))
			continue
		}
		if string(kind) != "Event" {
			w.errors = append(w.errors, fmt.Sprintf("%s event of kind %q", typ, kind))
			continue
		}
		name, ann, err := eventMeta(meta)
		if err != nil {
			return err
		}
		w.note(watch.EventType(typ), name, ann, now, run, warm)
	}
}

// protobufMagic starts every object in Kubernetes' protobuf encoding.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

// Field numbers in k8s.io/apimachinery's and k8s.io/api's generated.proto.
const (
	watchEventTypeField   = 1 // metav1.WatchEvent.type
	watchEventObjectField = 2 // metav1.WatchEvent.object (a RawExtension)
	rawExtensionRawField  = 1 // runtime.RawExtension.raw
	unknownTypeMetaField  = 1 // runtime.Unknown.typeMeta
	unknownRawField       = 2 // runtime.Unknown.raw
	typeMetaKindField     = 2 // runtime.TypeMeta.kind
	eventMetadataField    = 1 // Event.metadata
	metaNameField         = 1 // ObjectMeta.name
	metaAnnotationsField  = 12
)

// watchEventParts returns a protobuf watch event's type, its object's kind
// and the object's metadata, as slices of frame.
func watchEventParts(frame []byte) (typ, kind, meta []byte, err error) {
	typ, err = protoField(frame, watchEventTypeField)
	if err != nil {
		return nil, nil, nil, err
	}
	obj, err := protoField(frame, watchEventObjectField)
	if err != nil {
		return nil, nil, nil, err
	}
	raw, err := protoField(obj, rawExtensionRawField)
	if err != nil {
		return nil, nil, nil, err
	}
	u, ok := bytes.CutPrefix(raw, protobufMagic)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%s event without the protobuf envelope", typ)
	}
	tm, err := protoField(u, unknownTypeMetaField)
	if err != nil {
		return nil, nil, nil, err
	}
	if kind, err = protoField(tm, typeMetaKindField); err != nil {
		return nil, nil, nil, err
	}
	body, err := protoField(u, unknownRawField)
	if err != nil {
		return nil, nil, nil, err
	}
	meta, err = protoField(body, eventMetadataField)
	return typ, kind, meta, err
}

// benchAnnotations are the annotations the benchmark reads of an event.
type benchAnnotations struct{ run, seq, sent []byte }

// annotationsOf takes the benchmark's annotations from a decoded event's.
func annotationsOf(a map[string]string) benchAnnotations {
	return benchAnnotations{run: []byte(a[annRun]), seq: []byte(a[load.AnnSeq]), sent: []byte(a[load.AnnSent])}
}

// eventMeta reads the name and the benchmark's annotations from an
// ObjectMeta's protobuf encoding, skipping every other field.
func eventMeta(md []byte) (name []byte, ann benchAnnotations, err error) {
	err = protoFields(md, func(num protowire.Number, v []byte) (bool, error) {
		switch num {
		case metaNameField:
			name = v
		case metaAnnotationsField:
			// A map entry: key 1, value 2.
			k, err := protoField(v, 1)
			if err != nil {
				return false, err
			}
			val, err := protoField(v, 2)
			if err != nil {
				return false, err
			}
			switch string(k) {
			case annRun:
				ann.run = val
			case load.AnnSeq:
				ann.seq = val
			case load.AnnSent:
				ann.sent = val
			}
		}
		return true, nil
	})
	return name, ann, err
}

// protoField returns the bytes of the first length-delimited field num of
// message b, or nil when it has none.
func protoField(b []byte, num protowire.Number) ([]byte, error) {
	var out []byte
	err := protoFields(b, func(n protowire.Number, v []byte) (bool, error) {
		if n == num {
			out = v
			return false, nil
		}
		return true, nil
	})
	return out, err
}

// protoFields calls f with the number and bytes of each length-delimited
// field of message b, in order, skipping fields of other wire types, until
// f returns false or an error.
func protoFields(b []byte, f func(num protowire.Number, v []byte) (bool, error)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if more, err := f(num, v); err != nil || !more {
			return err
		}
	}
	return nil
}

// receiveJSON reads the JSON watch stream: one watch event object after
// another.
func (r *rawStream) receiveJSON(w *watcherState, run string, warm uint64) error {
	dec := json.NewDecoder(r.body)
	for {
		var e struct {
			Type   watch.EventType `json:"type"`
			Object struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name        string            `json:"name"`
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
			} `json:"object"`
		}
		if err := dec.Decode(&e); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		now := time.Now()
		switch e.Type {
		case watch.Bookmark:
			continue
		case watch.Error:
			w.errors = append(w.errors, fmt.Sprintf("ERROR event of kind %q", e.Object.Kind))
			continue
		}
		if e.Object.Kind != "Event" {
			w.errors = append(w.errors, fmt.Sprintf("%s event of kind %q", e.Type, e.Object.Kind))
			continue
		}
		w.note(e.Type, []byte(e.Object.Metadata.Name), annotationsOf(e.Object.Metadata.Annotations), now, run, warm)
	}
}
