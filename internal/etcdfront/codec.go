package etcdfront

import (
	"bytes"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// Media types kube-apiserver stores objects in (--storage-media-type).
const (
	MediaTypeProtobuf = "application/vnd.kubernetes.protobuf"
	MediaTypeJSON     = "application/json"
)

// encryptedPrefix starts a value kube-apiserver encrypted at rest
// (EncryptionConfiguration); eventpipe cannot index what it cannot read.
var encryptedPrefix = []byte("k8s:enc:")

var eventGVK = corev1.SchemeGroupVersion.WithKind("Event")

// codec turns kube-apiserver's stored values into core/v1 Events and back.
// kube-apiserver stores Events as core/v1 (events.k8s.io Events share that
// storage), in protobuf (the "k8s\x00" envelope) by default or in JSON.
// Both are decoded whatever the front is set to write; values are written
// in the configured type, which must be kube-apiserver's for the bytes to
// be the ones it wrote.
type codec struct {
	decoder runtime.Decoder
	encoder runtime.Encoder
}

func newCodec(mediaType string) (*codec, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c := &codec{decoder: serializer.NewCodecFactory(scheme).UniversalDeserializer()}
	switch mediaType {
	case MediaTypeProtobuf:
		c.encoder = protobuf.NewSerializer(scheme, scheme)
	case MediaTypeJSON:
		c.encoder = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{})
	default:
		return nil, fmt.Errorf("storage media type %q is not supported; allowed: %s, %s", mediaType, MediaTypeProtobuf, MediaTypeJSON)
	}
	return c, nil
}

// decode reads a value kube-apiserver stores for the event namespace/name.
// Its errors say why the value cannot be an Event there.
func (c *codec) decode(value []byte, namespace, name string) (*corev1.Event, error) {
	if bytes.HasPrefix(value, encryptedPrefix) {
		return nil, fmt.Errorf("the value is encrypted at rest (%q…): eventpipe indexes Events and cannot read encrypted ones; "+
			"leave events out of kube-apiserver's --encryption-provider-config", value[:min(len(value), 16)])
	}
	obj, gvk, err := c.decoder.Decode(value, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("the value is not a Kubernetes object in protobuf or JSON: %v", err)
	}
	ev, ok := obj.(*corev1.Event)
	if !ok || *gvk != eventGVK {
		return nil, fmt.Errorf("the value is a %s, not a %s", gvk, eventGVK)
	}
	if ev.Namespace != namespace || ev.Name != name {
		return nil, fmt.Errorf("the value is Event %s/%s but its key names %s/%s", ev.Namespace, ev.Name, namespace, name)
	}
	ev.TypeMeta = metav1.TypeMeta{}
	ev.ResourceVersion = ""
	return ev, nil
}

// encode returns the value of a stored Event, as kube-apiserver writes it:
// with its kind and no resourceVersion (the revision carries it).
func (c *codec) encode(ev *corev1.Event) ([]byte, error) {
	out := *ev
	out.TypeMeta = metaEvent
	out.ResourceVersion = ""
	var b bytes.Buffer
	if err := c.encoder.Encode(&out, &b); err != nil {
		return nil, fmt.Errorf("encode event %s/%s: %w", ev.Namespace, ev.Name, err)
	}
	return b.Bytes(), nil
}

// metaEvent is the kind kube-apiserver stores an Event with.
var metaEvent = metav1.TypeMeta{APIVersion: eventGVK.GroupVersion().String(), Kind: eventGVK.Kind}
