package event

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// encodings holds one state's object as one view serves it, and what it
// encodes to for each encoder (JSON or protobuf, group version, table
// options, event type: the identifier k8s.io/apiserver's watch encoder
// passes), so that every watch of the state that asks for the same bytes
// gets them from one encoding. kube-apiserver's watch cache does the same
// for its watchers. Without it, a hundred watches of all namespaces meant a
// hundred conversions and encodings of every state.
type encodings struct {
	obj runtime.Object
	// copy is set when obj is shared with other watches: an encoder may set
	// the object's kind while it works, so each encoding gets a copy.
	copy bool

	mu   sync.Mutex
	byID map[runtime.Identifier]*encoding
}

type encoding struct {
	once sync.Once
	raw  []byte
	err  error
}

func (e *encodings) get(id runtime.Identifier) *encoding {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byID == nil {
		e.byID = map[runtime.Identifier]*encoding{}
	}
	enc, ok := e.byID[id]
	if !ok {
		enc = &encoding{}
		e.byID[id] = enc
	}
	return enc
}

// transformedEncoding marks, in k8s.io/apiserver's encoder identifiers, an
// encoding that transforms the object for one watch (a Table for kubectl
// get -w, or PartialObjectMetadata). Such an encoder has state of its own
// watch: a table's column definitions go into its first event only, and it
// stops sending them only once it has encoded one. Those encodings are
// made per watch, never shared (the conformance case core/watch-table
// fails otherwise).
const transformedEncoding = "watch-embedded"

// object is what one watch sends: the shared encodings, with an object
// kind of the watch's own, so that nothing one watch's machinery sets on it
// reaches another.
func (e *encodings) object() runtime.Object {
	return &encodedObject{enc: e, kind: e.obj.GetObjectKind().GroupVersionKind()}
}

// encodedObject implements runtime.CacheableObject, which k8s.io/apiserver's
// watch encoder and codecs look for.
type encodedObject struct {
	enc  *encodings
	kind schema.GroupVersionKind
}

var _ runtime.CacheableObject = &encodedObject{}

// CacheEncode writes what encode makes of the object, encoding it only the
// first time any watch asks for id.
func (o *encodedObject) CacheEncode(id runtime.Identifier, encode func(runtime.Object, io.Writer) error, w io.Writer) error {
	if strings.Contains(string(id), transformedEncoding) {
		return encode(o.GetObject(), w)
	}
	enc := o.enc.get(id)
	enc.once.Do(func() {
		var buf bytes.Buffer
		enc.err = encode(o.GetObject(), &buf)
		// Kept while the state is in the hub's ring: at its own size, not
		// the buffer's (up to twice as large).
		enc.raw = bytes.Clone(buf.Bytes())
	})
	if enc.err != nil {
		return enc.err
	}
	_, err := w.Write(enc.raw)
	return err
}

// GetObject returns the object, a copy of it if it is shared.
func (o *encodedObject) GetObject() runtime.Object {
	if o.enc.copy {
		return o.enc.obj.DeepCopyObject()
	}
	return o.enc.obj
}

func (o *encodedObject) GetObjectKind() schema.ObjectKind { return o }

func (o *encodedObject) DeepCopyObject() runtime.Object { return o.GetObject().DeepCopyObject() }

// SetGroupVersionKind and GroupVersionKind make encodedObject its own
// schema.ObjectKind.
func (o *encodedObject) SetGroupVersionKind(gvk schema.GroupVersionKind) { o.kind = gvk }

func (o *encodedObject) GroupVersionKind() schema.GroupVersionKind { return o.kind }
