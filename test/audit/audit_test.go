// Package audit_test runs a real kube-apiserver whose audit webhook points
// at eventpipe (and whose Events are stored in eventpipe through the etcd
// front), and checks that requests become Activities tied to the events
// they caused, that every batch kube-apiserver was told was stored is
// stored once across a kill -9, and that tenants see only their own.
package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
)

// auditPolicy records writes with their bodies (the summaries read what
// changed from them) and everything else as metadata, each request once
// (no RequestReceived stage).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: RequestResponse
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: Metadata
`

// auditArgs are kube-apiserver's flags for an audit webhook configured by
// webhookConfig: batches sent at least every second, retried from a second
// on.
func auditArgs(t *testing.T, webhookConfig string) []string {
	policy := filepath.Join(t.TempDir(), "audit-policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(auditPolicy), 0o600))
	return []string{"--audit-policy-file=" + policy, "--audit-webhook-config-file=" + webhookConfig,
		"--audit-webhook-batch-max-wait=1s", "--audit-webhook-initial-backoff=2s"}
}

type activityJSON struct {
	Metadata struct {
		Namespace, Name string
	}
	Spec struct {
		Summary  string
		Type     string
		Reason   string
		Resource struct{ Kind, Namespace, Name string }
		Actor    struct{ Type, Name string }
		Origin   struct{ Source, AuditID, EventName string }
		Tenant   struct{ Type, Name string }
		CausedBy []struct{ Namespace, Name, Summary string } `json:"causedBy"`
		Caused   []struct{ Namespace, Name, Summary string }
	}
}

// kubectl runs the real kubectl against eventpipe with kubeconfig.
func kubectl(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	_, bin, _ := kubetest.Binaries(t)
	out, err := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

func activities(t *testing.T, kubeconfig string, args ...string) []activityJSON {
	t.Helper()
	out, err := kubectl(t, kubeconfig, append([]string{"get", "activities", "-o", "json"}, args...)...)
	require.NoError(t, err, out)
	var list struct{ Items []activityJSON }
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	return list.Items
}

func adminConfig(t *testing.T, kubeconfig string) *rest.Config {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	return rc
}

func getActivity(t *testing.T, kubeconfig, ns, name string) activityJSON {
	t.Helper()
	out, err := kubectl(t, kubeconfig, "get", "activity", "-n", ns, name, "-o", "json")
	require.NoError(t, err, out)
	var a activityJSON
	require.NoError(t, json.Unmarshal([]byte(out), &a), out)
	return a
}

// waitFor polls cond every half second until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, state)
		}
		<-tick.C
	}
}

func summaries(as []activityJSON) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "\n  %s/%s [%s] %s", a.Metadata.Namespace, a.Metadata.Name, a.Spec.Origin.Source, a.Spec.Summary)
	}
	return b.String()
}

func find(as []activityJSON, summary string) *activityJSON {
	for i := range as {
		if as[i].Spec.Summary == summary {
			return &as[i]
		}
	}
	return nil
}

// TestRequestsBecomeActivities: the acceptance path of docs/audit.md. A
// kube-apiserver 1.37 with eventpipe as its audit webhook and Events
// store; kubectl-style requests by the admin and a forbidden one by an
// unprivileged user become Activities with the right user, verb, object
// and summary; an Event about the scaled Deployment is tied to the scale
// request's Activity and back; a tenant sees none of it.
func TestRequestsBecomeActivities(t *testing.T) {
	eo := devtest.Options(t)
	eo.EtcdPort = 0
	env := devtest.Run(t, eo)
	o := kubetest.Options{Users: []kubetest.User{{Name: "mallory"}}}
	o.ExtraArgs = append(auditArgs(t, env.AuditWebhookConfig), "--etcd-servers-overrides=/events#"+env.EtcdEndpoint)
	c := kubetest.StartCluster(t, o)
	admin, err := kubernetes.NewForConfig(c.Config)
	require.NoError(t, err)
	ctx := context.Background()

	// The requests, as kubectl makes them.
	clusterKubeconfig := c.Kubeconfig
	run := func(kubeconfig string, args ...string) string {
		out, err := kubectl(t, kubeconfig, args...)
		require.NoError(t, err, "kubectl %s: %s", strings.Join(args, " "), out)
		return out
	}
	run(clusterKubeconfig, "create", "namespace", "prod")
	run(clusterKubeconfig, "-n", "prod", "create", "deployment", "web", "--image=registry.invalid/web:1")
	run(clusterKubeconfig, "-n", "prod", "scale", "deployment", "web", "--replicas=3")
	run(clusterKubeconfig, "-n", "prod", "create", "configmap", "app-config", "--from-literal=a=b")
	run(clusterKubeconfig, "-n", "prod", "delete", "configmap", "app-config")
	malloryKubeconfig := c.KubeconfigFor("mallory", c.Users["mallory"].Token)
	out, err := kubectl(t, malloryKubeconfig, "-n", "prod", "delete", "deployment", "web")
	require.Error(t, err)
	require.Contains(t, out, "forbidden")

	// The deployment controller's Event, written through kube-apiserver
	// (so stored in eventpipe through the etcd front, in the cluster's
	// scope) a moment after the scale.
	dep, err := admin.AppsV1().Deployments("prod").Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	now := metav1.Now()
	_, err = admin.CoreV1().Events("prod").Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "web.scaled"},
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", APIVersion: appsv1.SchemeGroupVersion.String(), Namespace: "prod",
			Name: "web", UID: dep.UID},
		Reason: "ScalingReplicaSet", Message: "Scaled up replica set web-7d9f to 3", Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "deployment-controller"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	want := map[string]struct{ verb, kind, name, actorType string }{
		"admin created Namespace prod":                                     {"create", "Namespace", "prod", "user"},
		"admin created Deployment web":                                     {"create", "Deployment", "web", "user"},
		"admin scaled Deployment web from 0 to 3":                          {"patch", "Deployment", "web", "user"},
		"admin created ConfigMap app-config":                               {"create", "ConfigMap", "app-config", "user"},
		"admin deleted ConfigMap app-config":                               {"delete", "ConfigMap", "app-config", "user"},
		"mallory was forbidden to delete Deployment web in namespace prod": {"delete", "Deployment", "web", "user"},
	}
	var all []activityJSON
	waitFor(t, "every request's Activity and the event's", 90*time.Second, func() (bool, string) {
		all = activities(t, env.Kubeconfig, "-A")
		for s := range want {
			if find(all, s) == nil {
				return false, "missing " + s + summaries(all)
			}
		}
		return find(all, "Deployment web scaled replica set web-7d9f to 3") != nil, "no event activity" + summaries(all)
	})
	for s, w := range want {
		a := find(all, s)
		require.Equal(t, "Audit", a.Spec.Origin.Source, s)
		require.Equal(t, w.verb, a.Spec.Reason, s)
		require.Equal(t, w.kind, a.Spec.Resource.Kind, s)
		require.Equal(t, w.name, a.Spec.Resource.Name, s)
		require.Equal(t, w.actorType, a.Spec.Actor.Type, s)
		require.Equal(t, devenv.EtcdScope.Name, a.Spec.Tenant.Name, "the webhook's identity stamps the scope")
		require.NotEmpty(t, a.Spec.Origin.AuditID)
	}
	for _, a := range all {
		require.NotEqual(t, "get", a.Spec.Reason, "reads make no Activity: %s", a.Spec.Summary)
		require.NotEqual(t, "list", a.Spec.Reason, "reads make no Activity: %s", a.Spec.Summary)
		require.NotContains(t, a.Spec.Summary, "system:", "the control plane's own requests make no Activity")
	}

	// The event's Activity names the scale request as its cause, and the
	// request's Activity names the event.
	scale := find(all, "admin scaled Deployment web from 0 to 3")
	ev := getActivity(t, env.Kubeconfig, "prod", "web.scaled")
	require.Len(t, ev.Spec.CausedBy, 1, "%+v", ev.Spec.CausedBy)
	require.Equal(t, scale.Metadata.Name, ev.Spec.CausedBy[0].Name, "caused by %+v; all: %s", ev.Spec.CausedBy, summaries(all))
	req := getActivity(t, env.Kubeconfig, "prod", scale.Metadata.Name)
	var caused []string
	for _, r := range req.Spec.Caused {
		caused = append(caused, r.Name)
	}
	require.Contains(t, caused, "web.scaled")
	forbidden := find(all, "mallory was forbidden to delete Deployment web in namespace prod")
	require.Equal(t, "Warning", forbidden.Spec.Type)
	require.Empty(t, getActivity(t, env.Kubeconfig, "prod", forbidden.Metadata.Name).Spec.Caused, "a refused request caused nothing")

	// The object's history: requests and events interleaved, oldest last.
	table, err := kubectl(t, env.Kubeconfig, "get", "activities", "-n", "prod", "--field-selector", "spec.resource.kind=Deployment,spec.resource.name=web")
	require.NoError(t, err, table)
	require.Regexp(t, `(?m)^LAST SEEN\s+SUMMARY\s+RESOURCE\s+ACTOR\s+SOURCE\s+COUNT$`, table)
	require.Regexp(t, `(?m)Deployment web scaled replica set web-7d9f to 3\s+Deployment/web\s+deployment-controller\s+Event\s+1`, table)
	require.Regexp(t, `(?m)admin scaled Deployment web from 0 to 3\s+Deployment/web\s+admin\s+Audit\s+1`, table)

	// The receiver wants credentials, as every ingest path does.
	anon := rest.AnonymousClientConfig(adminConfig(t, env.Kubeconfig))
	hc, err := rest.HTTPClientFor(anon)
	require.NoError(t, err)
	resp, err := hc.Post(env.APIServerURL+"/ingest/v1/audit", "application/json", strings.NewReader(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[]}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(body))
	require.Contains(t, string(body), "/ingest/v1/audit needs credentials")

	// The records themselves, through AuditLogQuery: the scale request
	// with its user, verb, object and response code.
	scaleSpec := map[string]any{"startTime": "now-1h", "endTime": "now", "user": "admin", "verbs": []string{"patch"},
		"resource": "deployments", "subresource": "scale", "namespace": "prod"}
	var recs []auditv1.Event
	waitFor(t, "the scale request's record is indexed", 30*time.Second, func() (bool, string) {
		recs = auditRecords(t, env.Kubeconfig, scaleSpec)
		return len(recs) == 1, fmt.Sprintf("%d records", len(recs))
	})
	require.Equal(t, scale.Spec.Origin.AuditID, string(recs[0].AuditID))
	require.Equal(t, "web", recs[0].ObjectRef.Name)
	require.EqualValues(t, 200, recs[0].ResponseStatus.Code)
	require.NotNil(t, recs[0].ResponseObject, "the policy records writes with their bodies")

	// A tenant sees none of the cluster's requests, in any API.
	for _, k := range env.TenantKubeconfigs {
		require.Empty(t, auditRecords(t, k.Path, map[string]any{"startTime": "now-1h", "endTime": "now"}), "tenant %s", k.Scope)
		require.Empty(t, activities(t, k.Path, "-A"), "tenant %s", k.Scope)
		out, err := kubectl(t, k.Path, "get", "activity", "-n", "prod", scale.Metadata.Name)
		require.Error(t, err)
		require.Contains(t, out, "NotFound")
	}
}
