// Package activity tests Activities end to end: the eventpipe binary in dev
// mode with its simulated cluster, and the real kubectl.
package activity

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
)

// startDev builds eventpipe, runs `eventpipe dev` with the simulated
// cluster and returns the kubeconfig once it is ready.
func startDev(t *testing.T) string {
	t.Helper()
	chtest.RequireBinary(t)
	bin, err := devtest.BuildEventpipe(t.TempDir())
	require.NoError(t, err)
	dir := t.TempDir()
	cmd := exec.Command(bin, "dev", "--data-dir", dir, "--demo.backfill", "3000", "--demo.history", "2h", "--demo.rate", "50")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	logs, err := os.Create(filepath.Join(t.TempDir(), "dev.log"))
	require.NoError(t, err)
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { devtest.StopProcess(t, cmd) })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "eventpipe dev is ready") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(90 * time.Second):
		b, _ := os.ReadFile(logs.Name())
		t.Fatalf("eventpipe dev not ready within 90s:\n%s", b)
	}
	return filepath.Join(dir, "kubeconfig")
}

type activityJSON struct {
	Metadata struct{ Namespace, Name string } `json:"metadata"`
	Spec     struct {
		Summary  string `json:"summary"`
		Count    int32  `json:"count"`
		Resource struct{ Kind, Name string }
		Origin   struct{ Policy, Rule string }
	} `json:"spec"`
}

func TestActivitiesWithKubectl(t *testing.T) {
	kc := startDev(t)
	kubectl := func(args ...string) string {
		t.Helper()
		out, stderr, err := kubetest.Kubectl(t, kc, args...)
		require.NoError(t, err, "kubectl %v: %s", args, stderr)
		return out
	}
	list := func(args ...string) []activityJSON {
		t.Helper()
		var l struct{ Items []activityJSON }
		require.NoError(t, json.Unmarshal([]byte(kubectl(append([]string{"get", "activities", "-o", "json"}, args...)...)), &l))
		return l.Items
	}
	// eventually polls until ok or 5s pass: the promised delay from event to
	// Activity.
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 5s: %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	t.Run("every generated kind reads as a sentence", func(t *testing.T) {
		kinds := map[string]string{"Pod": "builtin-pod", "Deployment": "builtin-deployment", "ReplicaSet": "builtin-replicaset",
			"StatefulSet": "builtin-statefulset", "DaemonSet": "builtin-daemonset", "Job": "builtin-job", "CronJob": "builtin-cronjob",
			"Node": "builtin-node", "PersistentVolumeClaim": "builtin-persistentvolumeclaim", "Service": "builtin-service",
			"HorizontalPodAutoscaler": "builtin-horizontalpodautoscaler"}
		// The simulated cluster is random: a rare kind (a volume claim, an
		// autoscaler) may have no event in the window for minutes. One event
		// of every kind, written here, makes each policy's presence certain;
		// the generated events of the kind are checked alongside.
		apiVersions := map[string]string{"Deployment": "apps/v1", "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
			"Job": "batch/v1", "CronJob": "batch/v1", "HorizontalPodAutoscaler": "autoscaling/v2"}
		var docs []string
		for kind := range kinds {
			apiVersion := apiVersions[kind]
			if apiVersion == "" {
				apiVersion = "v1"
			}
			docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Event
metadata: {name: check-%s, namespace: kinds}
involvedObject: {apiVersion: %s, kind: %s, name: check-%s, namespace: kinds}
reason: Checked
message: checked by the activity test
type: Normal
source: {component: activity-test}`, strings.ToLower(kind), apiVersion, kind, strings.ToLower(kind)))
		}
		manifest := filepath.Join(t.TempDir(), "kinds.yaml")
		require.NoError(t, os.WriteFile(manifest, []byte(strings.Join(docs, "\n---\n")), 0o600))
		kubectl("create", "-f", manifest)
		for kind, policy := range kinds {
			var items []activityJSON
			for deadline := time.Now().Add(60 * time.Second); len(items) == 0 && time.Now().Before(deadline); {
				if items = list("-A", "--field-selector", "spec.resource.kind="+kind); len(items) == 0 {
					time.Sleep(time.Second)
				}
			}
			require.NotEmpty(t, items, "no activities for %s", kind)
			for _, a := range items {
				require.Equal(t, policy, a.Spec.Origin.Policy, "%s/%s: %s", a.Metadata.Namespace, a.Metadata.Name, a.Spec.Summary)
				require.True(t, strings.HasPrefix(a.Spec.Summary, map[string]string{"PersistentVolumeClaim": "Volume claim", "HorizontalPodAutoscaler": "Autoscaler"}[kind]) ||
					strings.Contains(a.Spec.Summary, a.Spec.Resource.Name), "summary names the object: %q", a.Spec.Summary)
			}
		}
		// The table kubectl prints.
		ns := list("-A", "--field-selector", "spec.resource.kind=Pod")[0].Metadata.Namespace
		table := kubectl("get", "activities", "-n", ns)
		require.Regexp(t, `^LAST SEEN\s+SUMMARY\s+RESOURCE\s+ACTOR\s+SOURCE\s+COUNT\n`, table)
	})

	event := func(name, reason, msg string, count int) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Event
metadata:
  name: %s
  namespace: acttest
involvedObject:
  apiVersion: apps/v1
  kind: Deployment
  name: web
  namespace: acttest
reason: %s
message: %q
type: Normal
count: %d
source:
  component: deployment-controller
firstTimestamp: %s
lastTimestamp: %s
`, name, reason, msg, count, time.Now().UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
	}
	apply := func(yaml string) (string, string, error) {
		f := filepath.Join(t.TempDir(), "obj.yaml")
		require.NoError(t, os.WriteFile(f, []byte(yaml), 0o644))
		return kubetest.Kubectl(t, kc, "apply", "-f", f)
	}
	summaryOf := func(name string) string {
		for _, a := range list("-n", "acttest") {
			if a.Metadata.Name == name {
				return a.Spec.Summary
			}
		}
		return ""
	}

	t.Run("watch streams new activities", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		lines := kubetest.KubectlLines(ctx, t, kc, "get", "activities", "-n", "acttest", "-w", "--output-watch-events")
		// Whether the processor makes the Activity before kubectl's list or
		// after its watch started, --output-watch-events shows it ADDED.
		_, stderr, err := apply(event("web.watch1", "ScalingReplicaSet", "Scaled up replica set web-7d9f to 3 from 1", 1))
		require.NoError(t, err, stderr)
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "kubectl get activities -w exited")
				if strings.Contains(l, "Deployment web scaled replica set web-7d9f to 3") {
					require.Regexp(t, `^ADDED\s`, l)
					return
				}
			case <-deadline:
				t.Fatal("kubectl get activities -w showed no new activity within 30s")
			}
		}
	})

	t.Run("a custom policy changes new summaries", func(t *testing.T) {
		// deploymentPolicy is the my-deployments policy with one rule for
		// apps Deployments; match and summary are YAML scalars as written.
		deploymentPolicy := func(match, summary string) string {
			return fmt.Sprintf(`apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityPolicy
metadata:
  name: my-deployments
spec:
  resource:
    apiGroup: apps
    kind: Deployment
  eventRules:
  - name: scaled
    match: %s
    summary: %s
`, match, summary)
		}
		// summaryBecomes writes ScalingReplicaSet Events with message until
		// one's Activity reads want. The policy takes effect for new events
		// as soon as the processor sees it, so each try is a new Event
		// (prefix plus a unique number).
		summaryBecomes := func(what, prefix, message, want string) {
			t.Helper()
			eventually(what, func() bool {
				name := fmt.Sprintf("web.%s%d", prefix, time.Now().UnixNano())
				_, _, err := apply(event(name, "ScalingReplicaSet", message, 1))
				require.NoError(t, err)
				// Judge the try by its own Activity once that exists; each
				// kubectl call in summaryOf paces the poll.
				var got string
				for deadline := time.Now().Add(2 * time.Second); got == "" && time.Now().Before(deadline); {
					got = summaryOf(name)
				}
				return got == want
			})
		}

		_, stderr, err := apply(deploymentPolicy(`event.reason == "ScalingReplicaSet"`,
			`"{{ regarding.name }} now runs {{ event.message.split(' ')[6] }} pods via {{ actor }}"`))
		require.NoError(t, err, stderr)
		defer kubectl("delete", "activitypolicy", "my-deployments")
		summaryBecomes("the custom policy applies", "custom", "Scaled up replica set web-7d9f to 5 from 3",
			"web now runs 5 pods via deployment-controller")
		// Editing the policy with apply again changes the next summaries.
		_, stderr, err = apply(deploymentPolicy(`"true"`, `"edited {{ regarding.name }}"`))
		require.NoError(t, err, stderr)
		summaryBecomes("the edited policy applies", "edited", "Scaled up replica set web-7d9f to 6 from 5", "edited web")
	})

	t.Run("repeats update one activity", func(t *testing.T) {
		for c := 1; c <= 5; c++ {
			_, stderr, err := apply(event("web.repeat", "ScalingReplicaSet", "Scaled up replica set web-7d9f to 3 from 1", c))
			require.NoError(t, err, stderr)
		}
		eventually("count 5", func() bool {
			n := 0
			var count int32
			for _, a := range list("-n", "acttest", "--field-selector", "metadata.name=web.repeat") {
				n++
				count = a.Spec.Count
			}
			return n == 1 && count == 5
		})
	})

	t.Run("an invalid policy is refused with 422", func(t *testing.T) {
		_, stderr, err := apply(`apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityPolicy
metadata:
  name: broken
spec:
  resource:
    kind: Pod
  eventRules:
  - name: ok
    match: "true"
    summary: fine
  - name: typo
    match: "event.reason == 'BackOff' && regardng.name != ''"
    summary: "Pod {{ regarding.name } restarted"
`)
		require.Error(t, err)
		require.Equal(t, `The ActivityPolicy "broken" is invalid: 
* spec.eventRules[1].match: Invalid value: "event.reason == 'BackOff' && regardng.name != ''": column 30: undeclared reference to 'regardng' (in container '') (variables: event, regarding, related, actor, count, kind, namespace; function: link(text, object))
* spec.eventRules[1].summary: Invalid value: "Pod {{ regarding.name } restarted": column 23: unbalanced } in {{ }}
`, stderr)
		_, _, err = kubetest.Kubectl(t, kc, "get", "activitypolicy", "broken")
		require.Error(t, err, "nothing stored")
	})

	t.Run("preview evaluates a draft without storing it", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "preview.yaml")
		require.NoError(t, os.WriteFile(f, []byte(`apiVersion: activity.miloapis.com/v1alpha1
kind: PolicyPreview
metadata:
  name: try
spec:
  limit: 3
  policy:
    resource:
      kind: Pod
    eventRules:
    - name: all
      match: "true"
      summary: "draft {{ regarding.name }}"
`), 0o644))
		var pp struct {
			Status struct {
				Results []struct{ Rule, Summary string }
			}
		}
		require.NoError(t, json.Unmarshal([]byte(kubectl("create", "-f", f, "-o", "json")), &pp))
		require.Len(t, pp.Status.Results, 3)
		for _, r := range pp.Status.Results {
			require.Equal(t, "all", r.Rule)
			require.True(t, strings.HasPrefix(r.Summary, "draft "), r.Summary)
		}
	})
}
