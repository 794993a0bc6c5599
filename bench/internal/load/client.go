package load

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// Content types a client may ask for.
const (
	ContentProtobuf = "application/vnd.kubernetes.protobuf"
	ContentJSON     = "application/json"
)

// OwnConnection gives rc the benchmark's user agent and a Dial of its own,
// which keeps client-go from sharing its cached transport, and with it one
// HTTP/2 connection, between clients.
func OwnConnection(rc *rest.Config) {
	rc.UserAgent = "eventpipe-apibench"
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	rc.Dial = d.DialContext
}

// RawClient returns an HTTP client of the server config reaches, on a
// connection of its own, through client-go's transport (TLS, credentials,
// user agent), and the server's base URL.
func RawClient(config *rest.Config) (*http.Client, string, error) {
	rc := rest.CopyConfig(config)
	OwnConnection(rc)
	rt, err := rest.TransportFor(rc)
	if err != nil {
		return nil, "", err
	}
	return &http.Client{Transport: rt}, strings.TrimSuffix(rc.Host, "/"), nil
}

// Creator sends one create of ev and waits for the answer.
type Creator interface {
	Create(ctx context.Context, ev *corev1.Event) error
}

// ClientGoCreator creates through client-go's typed client, as kubelet's
// event recorder does, and decodes the answer into an Event.
type ClientGoCreator struct{ CS *kubernetes.Clientset }

func (c ClientGoCreator) Create(ctx context.Context, ev *corev1.Event) error {
	_, err := c.CS.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	return err
}

// RawCreator sends the same request as ClientGoCreator (same path, body,
// content type and connection) straight through client-go's transport, and
// reads the answer without decoding it: a load client that spends as little
// of the shared CPU as an HTTP/2 client can, so that more of it is left to
// the server under test.
type RawCreator struct {
	hc   *http.Client
	base string
	ct   string
	enc  runtime.Encoder
	body bytes.Buffer
	resp bytes.Buffer
}

// NewRawCreator returns a RawCreator of the server config reaches, on a
// connection of its own, sending and accepting contentType.
func NewRawCreator(config *rest.Config, contentType string) (*RawCreator, error) {
	hc, base, err := RawClient(config)
	if err != nil {
		return nil, err
	}
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), contentType)
	if !ok {
		return nil, fmt.Errorf("no serializer for %s", contentType)
	}
	return &RawCreator{
		hc:   hc,
		base: base,
		ct:   contentType,
		enc:  scheme.Codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion),
	}, nil
}

func (c *RawCreator) Create(ctx context.Context, ev *corev1.Event) error {
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
