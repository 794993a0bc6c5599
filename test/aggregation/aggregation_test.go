// Package aggregation runs eventpipe as an aggregated API server behind a
// real kube-apiserver 1.37 (issue 5): the host authenticates tenant users
// (through a TokenReview webhook that gives them their scope as user
// extras), authorizes them with RBAC, and proxies activity.miloapis.com to
// eventpipe, which trusts the proxy's request headers and delegates
// authorization back to the host.
package aggregation

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/test/internal/aggregated"
)

func TestAggregatedEventQuery(t *testing.T) {
	host := kubetest.StartCluster(t, kubetest.Options{ExtraArgs: kubetest.TenantWebhook(t, aggregated.TenantUsers)})
	ctx := context.Background()
	hostAdmin, err := kubernetes.NewForConfig(host.Config)
	require.NoError(t, err)

	// eventpipe trusts the host's front proxy and asks the host to review
	// tokens and access.
	s := devtest.New(t, func(o *devenv.Options) {
		o.ConfigureAPIServer = func(a *apiserver.Options) {
			a.RequestHeader.ClientCAFile = host.FrontProxyCAFile
			a.RequestHeader.AllowedNames = []string{kubetest.FrontProxyClientName}
			a.RequestHeader.UsernameHeaders = []string{"X-Remote-User"}
			a.RequestHeader.UIDHeaders = []string{"X-Remote-Uid"}
			a.RequestHeader.GroupHeaders = []string{"X-Remote-Group"}
			a.RequestHeader.ExtraHeaderPrefixes = []string{"X-Remote-Extra-"}
			a.AuthenticationKubeconfig = host.Kubeconfig
			a.AuthorizationKubeconfig = host.Kubeconfig
		}
	})
	epAdmin := s.Client()
	aggregated.SeedWarnings(t, epAdmin)
	require.Eventually(t, func() bool {
		l, err := epAdmin.CoreV1().Events("demo").List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 3
	}, 20*time.Second, 100*time.Millisecond, "seeded events queryable")

	// Register eventpipe with the host.
	port, err := strconv.Atoi(s.Env.APIServerURL[strings.LastIndex(s.Env.APIServerURL, ":")+1:])
	require.NoError(t, err)
	host.AggregateEventpipe(port)

	// RBAC in the host: alice may query, bob may not. kubectl create with
	// validation (its default) asks, for a kind that has no PATCH (as
	// EventQuery, like kube's own TokenReview), whether it is a CRD, so a
	// user who queries also needs to read CRDs (docs/tenancy.md).
	_, err = hostAdmin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "eventquery-user"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"activity.miloapis.com"}, Resources: []string{"eventqueries"}, Verbs: []string{"create"}},
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"get", "list"}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = hostAdmin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "eventquery-alice"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "eventquery-user"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "alice"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	alice := host.KubeconfigFor("alice", "tok-alice")
	bob := host.KubeconfigFor("bob", "tok-bob")

	t.Run("discovery through the host", func(t *testing.T) {
		out, errOut, err := kubetest.Kubectl(t, alice, "get", "--raw", "/apis/activity.miloapis.com/v1alpha1")
		require.NoError(t, err, errOut)
		var rl metav1.APIResourceList
		require.NoError(t, json.Unmarshal([]byte(out), &rl))
		require.Equal(t, "activity.miloapis.com/v1alpha1", rl.GroupVersion)
		var names []string
		for _, r := range rl.APIResources {
			names = append(names, r.Name)
		}
		require.Contains(t, names, "eventqueries")
	})

	query := aggregated.WarningsQuery(t)

	t.Run("a tenant sees only its own events", func(t *testing.T) {
		out, errOut, err := kubetest.Kubectl(t, alice, "create", "-f", query, "-o", "json")
		require.NoError(t, err, errOut)
		names, err := aggregated.ResultNames(out)
		require.NoError(t, err)
		require.ElementsMatch(t, aggregated.AliceSees, names)
	})

	t.Run("host RBAC denial is a 403", func(t *testing.T) {
		// Without validation: kubectl's schema check of a kind it cannot
		// find may first ask for CRDs, which bob may not list either.
		_, errOut, err := kubetest.Kubectl(t, bob, "create", "--validate=false", "-f", query, "-o", "json")
		require.Error(t, err)
		require.Contains(t, errOut, `eventqueries.activity.miloapis.com is forbidden: User "bob" cannot create resource "eventqueries" in API group "activity.miloapis.com" at the cluster scope`)
	})

	t.Run("eventpipe delegates authorization too", func(t *testing.T) {
		// Straight to eventpipe with the tenant's token: eventpipe asks the
		// host's TokenReview who it is and the host's RBAC what it may do.
		cfg := s.CurrentConfig()
		cfg.BearerToken = "tok-bob"
		dc, err := dynamic.NewForConfig(cfg)
		require.NoError(t, err)
		eq := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "EventQuery",
			"metadata": map[string]any{"name": "q"},
			"spec":     map[string]any{"startTime": "now-1h", "endTime": "now"},
		}}
		_, err = dc.Resource(schema.GroupVersionResource{Group: "activity.miloapis.com", Version: "v1alpha1", Resource: "eventqueries"}).
			Create(ctx, eq, metav1.CreateOptions{})
		require.Error(t, err)
		require.Contains(t, err.Error(), `User "bob" cannot create resource "eventqueries"`)
	})
}
