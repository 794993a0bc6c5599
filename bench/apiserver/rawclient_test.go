package apiserverbench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// creator sends one create of ev and waits for the answer.
type creator interface {
	create(ctx context.Context, ev *corev1.Event) error
}

// clientGoCreator creates through client-go's typed client, as kubelet's
// event recorder does, and decodes the answer into an Event.
type clientGoCreator struct{ cs *kubernetes.Clientset }

func (c clientGoCreator) create(ctx context.Context, ev *corev1.Event) error {
	_, err := c.cs.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	return err
}

// rawCreator sends the same request as clientGoCreator (same path, body,
// content type and connection) straight through client-go's transport, and
// reads the answer without decoding it: a load client that spends as little
// of the shared CPU as an HTTP/2 client can, so that more of it is left to
// the server under test.
type rawCreator struct {
	hc   *http.Client
	base string
	ct   string
	enc  runtime.Encoder
	body bytes.Buffer
	resp bytes.Buffer
}

func newRawCreator(s *server, contentType string) (*rawCreator, error) {
	hc, base, err := rawClient(s)
	if err != nil {
		return nil, err
	}
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), contentType)
	if !ok {
		return nil, fmt.Errorf("no serializer for %s", contentType)
	}
	return &rawCreator{
		hc:   hc,
		base: base,
		ct:   contentType,
		enc:  scheme.Codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion),
	}, nil
}

func (c *rawCreator) create(ctx context.Context, ev *corev1.Event) error {
	c.body.Reset()
	if err := c.enc.Encode(ev, &c.body); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/namespaces/"+ev.Namespace+"/events", bytes.NewReader(c.body.Bytes()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", c.ct)
	req.Header.Set("Accept", c.ct)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	c.resp.Reset()
	_, err = c.resp.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("create %s/%s: %s: %.300q", ev.Namespace, ev.Name, resp.Status, c.resp.Bytes())
	}
	return nil
}

var createClient = flag.String("apibench.create-client", "raw",
	"how creates are sent: raw (the request client-go sends, through client-go's transport, answer read but not decoded) or client-go (client-go's typed client, answer decoded)")

// newCreators returns n creators of s, each with its own connection, of
// the kind -apibench.create-client names.
func newCreators(s *server, n int, contentType string) ([]creator, error) {
	out := make([]creator, n)
	for i := range out {
		switch *createClient {
		case "raw":
			c, err := newRawCreator(s, contentType)
			if err != nil {
				return nil, err
			}
			out[i] = c
		case "client-go":
			cs, err := newClient(s, contentType)
			if err != nil {
				return nil, err
			}
			out[i] = clientGoCreator{cs}
		default:
			return nil, fmt.Errorf("-apibench.create-client=%q: want raw or client-go", *createClient)
		}
	}
	return out, nil
}
