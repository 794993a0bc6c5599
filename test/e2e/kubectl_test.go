package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/kubetest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/ with what the commands print now")

// ages matches kubectl's age cells (LAST SEEN, FIRST SEEN): they depend on
// when the test runs, so goldens hold <age> instead.
var ages = regexp.MustCompile(`(^|\s)(\d+(s|m|h|d|y)(\d+(s|m|h|d))?|<unknown>|<invalid>)(\s|$|\))`)

// padding is the space between table cells.
var padding = regexp.MustCompile(`(\S)\s{2,}`)

// timestamps and server-assigned values in YAML/JSON output.
var volatile = regexp.MustCompile(`(?m)("?(uid|resourceVersion|creationTimestamp|firstTimestamp|lastTimestamp|time)"?: ?)"?[^",\n]*"?`)

func normalize(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		// Twice: adjacent age columns share the whitespace between them.
		aged := ages.ReplaceAllString(line, "$1<age>$6")
		aged = ages.ReplaceAllString(aged, "$1<age>$6")
		// An age's width varies from run to run ("5m", "5m1s") and kubectl
		// pads columns to the widest cell: compare tables cell by cell, not
		// by alignment (indentation, as in YAML, is kept).
		aged = padding.ReplaceAllString(aged, "$1  ")
		out = append(out, strings.TrimRight(aged, " "))
	}
	return volatile.ReplaceAllString(strings.Join(out, "\n"), `$1<volatile>`)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "kubectl", name+".golden")
	got = normalize(got)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "no golden file; run go test ./test/e2e -run TestKubectl -update")
	require.Equal(t, string(want), got, "kubectl output differs from %s (rerun with -update if the change is intended)", path)
}

// seed writes a fixed set of events the way a cluster's components do.
func seed(t *testing.T, ctx context.Context, create func(*corev1.Event)) {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	ts := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	for _, ev := range []*corev1.Event{
		{ObjectMeta: metav1.ObjectMeta{Name: "web-6f7d9.1800000000000001", Namespace: "demo"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "demo", Name: "web-6f7d9", APIVersion: "v1", FieldPath: "spec.containers{web}"},
			Reason:         "Pulling", Message: `Pulling image "nginx:1.27"`, Type: "Normal",
			Source: corev1.EventSource{Component: "kubelet", Host: "worker-1"}, FirstTimestamp: ts(5 * time.Minute), LastTimestamp: ts(5 * time.Minute), Count: 1},
		{ObjectMeta: metav1.ObjectMeta{Name: "web-6f7d9.1800000000000002", Namespace: "demo"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "demo", Name: "web-6f7d9", APIVersion: "v1", FieldPath: "spec.containers{web}"},
			Reason:         "BackOff", Message: "Back-off restarting failed container web in pod web-6f7d9_demo", Type: "Warning",
			Source: corev1.EventSource{Component: "kubelet", Host: "worker-1"}, FirstTimestamp: ts(4 * time.Minute), LastTimestamp: ts(2 * time.Minute), Count: 7},
		{ObjectMeta: metav1.ObjectMeta{Name: "web.1800000000000003", Namespace: "demo"},
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: "demo", Name: "web", APIVersion: "apps/v1"},
			Reason:         "ScalingReplicaSet", Message: "Scaled up replica set web-6f7d9 to 1", Type: "Normal",
			Source: corev1.EventSource{Component: "deployment-controller"}, FirstTimestamp: ts(6 * time.Minute), LastTimestamp: ts(6 * time.Minute), Count: 1},
		{ObjectMeta: metav1.ObjectMeta{Name: "db-0.1800000000000004", Namespace: "data"},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "data", Name: "db-0", APIVersion: "v1"},
			Reason:         "FailedMount", Message: `MountVolume.SetUp failed for volume "data" : configmap "db-config" not found`, Type: "Warning",
			Source: corev1.EventSource{Component: "kubelet", Host: "worker-2"}, FirstTimestamp: ts(3 * time.Minute), LastTimestamp: ts(time.Minute), Count: 3},
	} {
		create(ev)
	}
}

func TestKubectl(t *testing.T) {
	cs, env := startStack(t)
	ctx := context.Background()
	seed(t, ctx, func(ev *corev1.Event) {
		_, err := cs.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
		require.NoError(t, err)
	})
	kubectl := func(args ...string) string {
		t.Helper()
		out, stderr, err := kubetest.Kubectl(t, env.Kubeconfig, args...)
		require.NoError(t, err, "kubectl %v: %s", args, stderr)
		return out
	}
	// Lists are consistent: every create is in the first list after it.
	require.Equal(t, 4, len(strings.Split(strings.TrimSpace(kubectl("get", "events", "-A", "--no-headers")), "\n")))

	for _, c := range []struct {
		name string
		args []string
	}{
		{"get-namespace", []string{"get", "events", "-n", "demo"}},
		{"get-all-namespaces", []string{"get", "events", "-A"}},
		{"field-selector-reason", []string{"get", "events", "-A", "--field-selector", "reason=Pulling"}},
		{"field-selector-kind-type", []string{"get", "events", "-A", "--field-selector", "involvedObject.kind=Pod,type=Warning"}},
		{"wide", []string{"get", "events", "-n", "demo", "-o", "wide"}},
		{"custom-columns", []string{"get", "events", "-A", "-o", "custom-columns=NS:.metadata.namespace,REASON:.reason,COUNT:.count,OBJ:.involvedObject.name"}},
		{"sort-by-last-timestamp", []string{"get", "events", "-A", "--sort-by=.lastTimestamp", "-o", "custom-columns=NAME:.metadata.name"}},
		{"yaml", []string{"get", "event", "-n", "data", "db-0.1800000000000004", "-o", "yaml"}},
		{"json", []string{"get", "event", "-n", "demo", "web.1800000000000003", "-o", "json"}},
		{"events-for-pod", []string{"events", "-n", "demo", "--for", "pod/web-6f7d9"}},
		{"explain-reason", []string{"explain", "events.reason"}},
	} {
		t.Run(c.name, func(t *testing.T) { golden(t, c.name, kubectl(c.args...)) })
	}

	t.Run("create and delete from a file", func(t *testing.T) {
		f := demoEventFile(t, "manual.1", "Manual", "created with kubectl")
		golden(t, "create-file", kubectl("create", "-f", f))
		golden(t, "get-created", kubectl("get", "event", "-n", "demo", "manual.1", "-o", "custom-columns=REASON:.reason,MESSAGE:.message"))
		golden(t, "delete", kubectl("delete", "event", "-n", "demo", "manual.1"))
		_, stderr, err := kubetest.Kubectl(t, env.Kubeconfig, "get", "event", "-n", "demo", "manual.1")
		require.Error(t, err)
		golden(t, "get-deleted", stderr)
	})

	t.Run("watch", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		lines := kubetest.KubectlLines(wctx, t, env.Kubeconfig, "get", "events", "-n", "live", "-w",
			"-o", "custom-columns=TYPE:.type,REASON:.reason,COUNT:.count")
		// next is kubectl's next line with its column padding folded.
		next := func() string {
			select {
			case l := <-lines:
				return strings.Join(strings.Fields(l), " ")
			case <-time.After(20 * time.Second):
				t.Fatal("kubectl get -w printed nothing for 20s")
				return ""
			}
		}
		// Whether the create lands before or after kubectl's watch starts,
		// it is shown as ADDED: from the initial list or from the watch.
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "live.1", Namespace: "live"}, Reason: "Started", Type: "Normal", Count: 1,
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p", Namespace: "live"}}
		created, err := cs.CoreV1().Events("live").Create(ctx, ev, metav1.CreateOptions{})
		require.NoError(t, err)
		require.Equal(t, "TYPE REASON COUNT", next())
		require.Equal(t, "Normal Started 1", next())
		created.Count = 2
		_, err = cs.CoreV1().Events("live").Update(ctx, created, metav1.UpdateOptions{})
		require.NoError(t, err)
		require.Equal(t, "Normal Started 2", next(), "the update arrives live")
		cancel() // Ctrl-C: kubectl exits without complaint
	})
}

// TestKubectlAsTenants runs kubectl as each dev-mode tenant with an empty
// cache directory (kubetest.Kubectl gives every call a fresh one), so that
// discovery and OpenAPI are fetched with the tenant's own credentials:
// kube-apiserver lets every authenticated user read them.
// demoEventFile writes a manifest for kubectl -f: a Normal Event named name
// about the demo stack's pod web-6f7d9, and returns its path.
func demoEventFile(t *testing.T, name, reason, message string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "event.yaml")
	require.NoError(t, os.WriteFile(f, []byte(fmt.Sprintf(`apiVersion: v1
kind: Event
metadata:
  name: %s
  namespace: demo
involvedObject:
  kind: Pod
  name: web-6f7d9
  namespace: demo
reason: %s
message: %s
type: Normal
`, name, reason, message)), 0o644))
	return f
}

func TestKubectlAsTenants(t *testing.T) {
	_, env := startStack(t)
	require.NotEmpty(t, env.TenantKubeconfigs)
	for _, tk := range env.TenantKubeconfigs {
		t.Run(tk.User, func(t *testing.T) {
			kubectl := func(args ...string) string {
				t.Helper()
				out, stderr, err := kubetest.Kubectl(t, tk.Path, args...)
				require.NoError(t, err, "kubectl %v: %s", args, stderr)
				return out
			}
			kubectl("get", "events", "-A")
			f := demoEventFile(t, "tenant.1", "TenantManual", "created by "+tk.User)
			// Validation is on by default: kubectl checks the object against
			// the OpenAPI it downloads as this user.
			require.Equal(t, "event/tenant.1 created\n", kubectl("create", "--validate=strict", "-f", f))
			// create && get: the new event is in the very next list.
			out := kubectl("get", "events", "-n", "demo", "--field-selector", "reason=TenantManual", "-o", "custom-columns=NAME:.metadata.name,MESSAGE:.message", "--no-headers")
			require.Equal(t, []string{"tenant.1", "created", "by", tk.User}, strings.Fields(out))
			require.Contains(t, kubectl("explain", "events"), "Event is a report of an event somewhere in the cluster.")
			kubectl("get", "activities", "-A")
		})
	}
}
