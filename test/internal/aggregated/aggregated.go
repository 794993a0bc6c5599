// Package aggregated holds what the tests of eventpipe behind a real
// kube-apiserver share: two tenant users the host authenticates, three
// Warning events in their scopes, and an EventQuery for them, so that each
// test shows the same thing: a tenant sees its own history and nothing else.
package aggregated

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// TenantUsers are the host's webhook-authenticated users (for
// kubetest.TenantWebhook): their scope comes only from the host, as user
// extras.
var TenantUsers = map[string]kubetest.TenantUser{
	"tok-alice": {Name: "alice", Scope: scope.Scope{Type: "Project", Name: "alpha"}},
	"tok-bob":   {Name: "bob", Scope: scope.Scope{Type: "Project", Name: "beta"}},
}

// AliceSees is what alice's EventQuery must return; bob's event beta-1
// must never be in it.
var AliceSees = []string{"alpha-1", "alpha-2"}

// SeedWarnings creates alpha-1 and alpha-2 in alice's scope and beta-1 in
// bob's, Warning events in namespace demo, through an eventpipe client
// with platform rights (which may write into any scope).
func SeedWarnings(t *testing.T, platform kubernetes.Interface) {
	t.Helper()
	now := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	for _, e := range []struct{ name, scope string }{{"alpha-1", "alpha"}, {"alpha-2", "alpha"}, {"beta-1", "beta"}} {
		_, err := platform.CoreV1().Events("demo").Create(context.Background(), &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{Name: e.name, Namespace: "demo", Annotations: map[string]string{
				scope.AnnotationType: "Project", scope.AnnotationName: e.scope,
			}},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "demo", Name: "web-" + e.name, APIVersion: "v1"},
			Reason:         "BackOff", Message: "back-off " + e.name, Type: corev1.EventTypeWarning,
			Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("seed event %s: %v", e.name, err)
		}
	}
}

// WarningsQuery writes an EventQuery for the last hour's Warning events
// and returns its path, for kubectl create -f.
func WarningsQuery(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "eventquery.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: activity.miloapis.com/v1alpha1
kind: EventQuery
metadata:
  name: recent-warnings
spec:
  startTime: now-1h
  endTime: now
  fieldSelector: type=Warning
  limit: 100
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ResultNames returns the names of the events in an EventQuery answer
// (kubectl create -o json).
func ResultNames(answer string) ([]string, error) {
	var got unstructured.Unstructured
	if err := json.Unmarshal([]byte(answer), &got.Object); err != nil {
		return nil, err
	}
	results, _, err := unstructured.NestedSlice(got.Object, "status", "results")
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, r := range results {
		n, _, _ := unstructured.NestedString(r.(map[string]any), "metadata", "name")
		names = append(names, n)
	}
	return names, nil
}
