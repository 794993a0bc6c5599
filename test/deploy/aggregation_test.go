package deploy

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/test/internal/aggregated"
)

// testAggregation runs eventpipe as the chart would in a pod, except for
// the pod: the chart's ServiceAccount, RBAC, serving certificate,
// kubeconfig and APIService are applied to the host as rendered, eventpipe
// authenticates to the host with a token of that ServiceAccount (so the
// chart's RBAC must be enough for TokenReview, SubjectAccessReview and
// reading the front proxy's CA from kube-system), and the host verifies
// eventpipe's certificate with the APIService's caBundle. Only the Service
// differs: the test host runs no pods, so an ExternalName Service of the
// chart's name points at this machine.
func testAggregation(t *testing.T, host *kubetest.Cluster) {
	ctx := context.Background()
	hostAdmin, err := kubernetes.NewForConfig(host.Config)
	require.NoError(t, err)

	port := devtest.FreePort(t)
	manifest, err := render(t, "--set", "apiserver.service.port="+strconv.Itoa(port))
	require.NoError(t, err)
	objs := objects(t, manifest)
	sa := find(t, objs, "ServiceAccount", "eventpipe")
	tls := find(t, objs, "Secret", "eventpipe-apiserver-tls")
	kubeconfigMap := find(t, objs, "ConfigMap", "eventpipe-kubeconfig")
	apiService := find(t, objs, "APIService", "v1alpha1.activity.miloapis.com")
	var rbac []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetAPIVersion() == "rbac.authorization.k8s.io/v1" {
			rbac = append(rbac, o)
		}
	}
	require.Len(t, rbac, 5, "auth-delegator, authentication reader, view, edit and audit-reader: %v", kinds(rbac))
	apply := append([]*unstructured.Unstructured{sa, tls, kubeconfigMap}, rbac...)
	_, errOut, err := kubetest.Kubectl(t, host.Kubeconfig, "apply", "--server-side", "-f", writeManifest(t, apply...))
	require.NoError(t, err, errOut)

	// The pod's service account token and CA, where the chart's
	// kubeconfig expects them in a pod.
	token, errOut, err := kubetest.Kubectl(t, host.Kubeconfig, "create", "token", "eventpipe", "-n", namespace, "--duration=2h")
	require.NoError(t, err, errOut)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(strings.TrimSpace(token)), 0o600))
	kc, err := clientcmd.Load([]byte(kubeconfigMap.Object["data"].(map[string]any)["kubeconfig"].(string)))
	require.NoError(t, err)
	for _, cl := range kc.Clusters {
		require.Equal(t, "https://kubernetes.default.svc", cl.Server)
		cl.Server = host.URL
		require.Equal(t, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", cl.CertificateAuthority)
		cl.CertificateAuthority = host.CAFile
	}
	for _, u := range kc.AuthInfos {
		require.Equal(t, "/var/run/secrets/kubernetes.io/serviceaccount/token", u.TokenFile)
		u.TokenFile = tokenFile
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, kubeconfig))

	// The chart's serving certificate, served to whoever asks for the
	// Service's name (the aggregator does, as TLS server name).
	data := tls.Object["data"].(map[string]any)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for file, key := range map[string]string{certFile: "tls.crt", keyFile: "tls.key"} {
		b, err := base64.StdEncoding.DecodeString(data[key].(string))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(file, b, 0o600))
	}

	s := devtest.New(t, func(o *devenv.Options) {
		o.APIServerPort = port
		o.ConfigureAPIServer = func(a *apiserver.Options) {
			// What the chart's Deployment passes: the kubeconfig for both,
			// and no request-header flags, so eventpipe reads the front
			// proxy's CA and headers from the host.
			a.AuthenticationKubeconfig = kubeconfig
			a.AuthorizationKubeconfig = kubeconfig
			a.SecureServing.SNICertKeys = append(a.SecureServing.SNICertKeys, cliflag.NamedCertKey{
				Names: []string{"eventpipe-apiserver.eventpipe.svc"}, CertFile: certFile, KeyFile: keyFile,
			})
		}
	})
	aggregated.SeedWarnings(t, s.Client())

	// The chart's Service name, pointing at this machine; the chart's
	// APIService as rendered, with its caBundle and no insecureSkipTLSVerify.
	_, err = hostAdmin.CoreV1().Services(namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "eventpipe-apiserver"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost", Ports: []corev1.ServicePort{{Port: int32(port)}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, insecure, _ := unstructured.NestedBool(apiService.Object, "spec", "insecureSkipTLSVerify")
	require.False(t, insecure)
	_, errOut, err = kubetest.Kubectl(t, host.Kubeconfig, "apply", "--server-side", "-f", writeManifest(t, apiService))
	require.NoError(t, err, errOut)
	_, errOut, err = kubetest.Kubectl(t, host.Kubeconfig, "wait", "--for=condition=Available", "--timeout=90s",
		"apiservice/v1alpha1.activity.miloapis.com")
	require.NoError(t, err, errOut)

	// alice gets the chart's view role; bob nothing.
	_, err = hostAdmin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-eventpipe"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "eventpipe:view"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "alice"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	alice := host.KubeconfigFor("alice", "tok-alice")
	bob := host.KubeconfigFor("bob", "tok-bob")

	query := aggregated.WarningsQuery(t)

	t.Run("a tenant with the chart's view role queries its own history", func(t *testing.T) {
		// kubectl validates against the OpenAPI the aggregator fetches
		// from eventpipe some time after the APIService is Available, and
		// the seeded events become queryable once written: poll for both.
		var names []string
		var lastErr string
		require.Eventually(t, func() bool {
			out, errOut, err := kubetest.Kubectl(t, alice, "create", "-f", query, "-o", "json")
			if err != nil {
				lastErr = errOut
				return false
			}
			if names, err = aggregated.ResultNames(out); err != nil {
				lastErr = err.Error()
				return false
			}
			return len(names) == len(aggregated.AliceSees)
		}, time.Minute, 250*time.Millisecond, "alice's EventQuery through the chart's APIService: last error %s, names %v", lastErr, names)
		require.ElementsMatch(t, aggregated.AliceSees, names)
	})

	t.Run("without a binding the host's RBAC refuses", func(t *testing.T) {
		_, errOut, err := kubetest.Kubectl(t, bob, "create", "--validate=false", "-f", query, "-o", "json")
		require.Error(t, err)
		require.Contains(t, errOut, `User "bob" cannot create resource "eventqueries" in API group "activity.miloapis.com"`)
	})
}
