package kubetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// apiServiceTemplate registers activity.miloapis.com/v1alpha1 with the
// cluster, served through the Service "eventpipe" in default.
const apiServiceTemplate = `apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1alpha1.activity.miloapis.com
spec:
  group: activity.miloapis.com
  version: v1alpha1
  groupPriorityMinimum: 1000
  versionPriority: 15
  insecureSkipTLSVerify: true
  service:
    namespace: default
    name: eventpipe
    port: %d
`

// AggregateEventpipe makes kube-apiserver proxy activity.miloapis.com/v1alpha1
// to an eventpipe API server on this machine's port (kube-apiserver reaches
// an APIService through a Service; an ExternalName one points at
// localhost), and returns once the APIService is Available and kube-apiserver
// serves eventpipe's OpenAPI. kubectl validates what it creates against
// that OpenAPI, which the aggregator fetches some time after the APIService
// is Available, and takes another path before it has it.
func (c *Cluster) AggregateEventpipe(port int) {
	c.tb.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		c.tb.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "eventpipe"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost", Ports: []corev1.ServicePort{{Port: int32(port)}}},
	}, metav1.CreateOptions{}); err != nil {
		c.tb.Fatalf("kubetest: Service eventpipe: %v", err)
	}
	path := filepath.Join(c.tb.TempDir(), "apiservice.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(apiServiceTemplate, port)), 0o600); err != nil {
		c.tb.Fatal(err)
	}
	if out, errOut, err := Kubectl(c.tb, c.Kubeconfig, "apply", "-f", path); err != nil {
		c.tb.Fatalf("kubetest: kubectl apply APIService: %v: %s%s", err, out, errOut)
	}
	if out, errOut, err := Kubectl(c.tb, c.Kubeconfig, "wait", "--for=condition=Available", "--timeout=90s",
		"apiservice/v1alpha1.activity.miloapis.com"); err != nil {
		c.tb.Fatalf("kubetest: APIService not Available: %v: %s%s", err, out, errOut)
	}
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/openapi/v3/apis/activity.miloapis.com/v1alpha1").DoRaw(ctx)
		if err == nil && strings.Contains(string(body), `"kind":"EventQuery"`) {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("kubetest: kube-apiserver does not serve eventpipe's OpenAPI after a minute: %v", err)
		}
		<-tick.C
	}
}
