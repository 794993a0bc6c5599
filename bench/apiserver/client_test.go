package apiserverbench

import (
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/eventpipe/eventpipe/bench/internal/load"
)

// newClient returns a typed client of s with its own TCP connection (as
// each kubelet, controller or watcher has its own), no client-side rate
// limit, and the given content type for request and response bodies.
func newClient(s *server, contentType string) (*kubernetes.Clientset, error) {
	rc := rest.CopyConfig(s.config)
	rc.QPS, rc.Burst = -1, 0
	rc.ContentType = contentType
	rc.AcceptContentTypes = contentType
	if contentType == load.ContentProtobuf {
		rc.AcceptContentTypes = load.ContentProtobuf + "," + load.ContentJSON
	}
	load.OwnConnection(rc)
	return kubernetes.NewForConfig(rc)
}

// newClients returns n clients of s, each with its own connection.
func newClients(s *server, n int, contentType string) ([]*kubernetes.Clientset, error) {
	out := make([]*kubernetes.Clientset, n)
	for i := range out {
		c, err := newClient(s, contentType)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}
