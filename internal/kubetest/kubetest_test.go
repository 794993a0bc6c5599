package kubetest_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/kubetest"
)

// PeerVersion is the Kubernetes release the peers are built from
// (tools/kube/go.mod).
const PeerVersion = "v1.37.2"

func TestCluster(t *testing.T) {
	c := kubetest.StartCluster(t, kubetest.Options{
		Users: []kubetest.User{{Name: "jane", Groups: []string{"developers"}}},
	})
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(c.Config)
	require.NoError(t, err)

	t.Run("event written with client-go is listed by kubectl", func(t *testing.T) {
		now := metav1.NewTime(time.Now().Truncate(time.Second))
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "web-1.kubetest", Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", APIVersion: "v1"},
			Reason:         "Started",
			Message:        "Started container web",
			Type:           corev1.EventTypeNormal,
			Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
			FirstTimestamp: now,
			LastTimestamp:  now,
			Count:          1,
		}
		_, err := cs.CoreV1().Events("default").Create(ctx, ev, metav1.CreateOptions{})
		require.NoError(t, err)

		stdout, stderr, err := kubetest.Kubectl(t, c.Kubeconfig, "get", "events", "-n", "default", "-o", "json")
		require.NoError(t, err, stderr)
		var list corev1.EventList
		require.NoError(t, json.Unmarshal([]byte(stdout), &list))
		var got *corev1.Event
		for i := range list.Items {
			if list.Items[i].Name == ev.Name {
				got = &list.Items[i]
			}
		}
		require.NotNil(t, got, "event %s not in kubectl's list:\n%s", ev.Name, stdout)
		require.Equal(t, ev.Reason, got.Reason)
		require.Equal(t, ev.Message, got.Message)
		require.Equal(t, ev.InvolvedObject.Name, got.InvolvedObject.Name)
		require.NotEmpty(t, got.ResourceVersion)
	})

	t.Run("kubectl version reports the built release on both sides", func(t *testing.T) {
		stdout, stderr, err := kubetest.Kubectl(t, c.Kubeconfig, "version", "-o", "json")
		require.NoError(t, err, stderr)
		var v struct {
			ClientVersion struct{ GitVersion string } `json:"clientVersion"`
			ServerVersion struct{ GitVersion string } `json:"serverVersion"`
		}
		require.NoError(t, json.Unmarshal([]byte(stdout), &v), stdout)
		require.Equal(t, PeerVersion, v.ServerVersion.GitVersion)
		require.Equal(t, PeerVersion, v.ClientVersion.GitVersion)
	})

	t.Run("extra users authenticate and RBAC applies", func(t *testing.T) {
		jane := c.Users["jane"]
		require.NotEmpty(t, jane.Token)
		kc := c.KubeconfigFor(jane.Name, jane.Token)

		_, stderr, err := kubetest.Kubectl(t, kc, "get", "events", "-n", "default")
		require.Error(t, err)
		require.Contains(t, stderr, `User "jane" cannot list resource "events"`)

		stdout, stderr, err := kubetest.Kubectl(t, kc, "auth", "whoami", "-o", "json")
		require.NoError(t, err, stderr)
		require.Contains(t, stdout, `"developers"`)

		// Not the "view" ClusterRole: admin, edit and view are aggregated
		// by kube-controller-manager, which does not run here, so they
		// stay empty.
		_, stderr, err = kubetest.Kubectl(t, c.Kubeconfig, "create", "role", "event-reader",
			"--verb=get,list,watch", "--resource=events", "-n", "default")
		require.NoError(t, err, stderr)
		_, stderr, err = kubetest.Kubectl(t, c.Kubeconfig, "create", "rolebinding", "developers-read-events",
			"--role=event-reader", "--group=developers", "-n", "default")
		require.NoError(t, err, stderr)
		require.Eventually(t, func() bool {
			_, _, err := kubetest.Kubectl(t, kc, "get", "events", "-n", "default")
			return err == nil
		}, 10*time.Second, 200*time.Millisecond)
	})

	t.Run("aggregation is set up for delegated authentication", func(t *testing.T) {
		cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
		require.NoError(t, err)
		fpCA, err := os.ReadFile(c.FrontProxyCAFile)
		require.NoError(t, err)
		require.Equal(t, strings.TrimSpace(string(fpCA)), strings.TrimSpace(cm.Data["requestheader-client-ca-file"]))
		require.Contains(t, cm.Data["requestheader-allowed-names"], kubetest.FrontProxyClientName)
	})
}
