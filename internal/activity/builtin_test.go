package activity

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/generator"
	"github.com/eventpipe/eventpipe/internal/scope"
)

var (
	update = flag.Bool("update", false, "rewrite the golden summaries in testdata/golden")
	record = flag.Bool("record", false, "re-record testdata/events from the simulated cluster (then run with -update)")
)

// builtinKinds are the kinds the shipped policies cover, by file name.
var builtinKinds = map[string]string{
	"Pod": "pod", "Deployment": "deployment", "ReplicaSet": "replicaset", "StatefulSet": "statefulset",
	"DaemonSet": "daemonset", "Job": "job", "CronJob": "cronjob", "Node": "node",
	"PersistentVolumeClaim": "persistentvolumeclaim", "Service": "service",
	"HorizontalPodAutoscaler": "horizontalpodautoscaler",
}

// TestRecordEvents writes realistic events per kind from the simulated
// cluster: up to 4 of each (kind, reason), plus an event of a kind no
// built-in policy covers, for the fallback. Run with -record.
func TestRecordEvents(t *testing.T) {
	if !*record {
		t.Skip("run with -record to re-record testdata/events")
	}
	gen, err := generator.New(generator.Config{Tenants: []scope.Scope{{Type: scope.TypeProject, Name: "alpha"}}, Rate: 100, Seed: 42})
	require.NoError(t, err)
	byKind := map[string][]corev1.Event{}
	seen := map[string]int{}
	for i := 0; i < 200000; i++ {
		_, _, ev := gen.Next()
		k := ev.InvolvedObject.Kind + "/" + ev.Reason
		if seen[k] >= 4 {
			continue
		}
		seen[k]++
		e := ev.DeepCopy()
		e.ManagedFields = nil
		byKind[ev.InvolvedObject.Kind] = append(byKind[ev.InvolvedObject.Kind], *e)
	}
	dir := filepath.Join("testdata", "events")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for kind, evs := range byKind {
		b, err := json.MarshalIndent(evs, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, strings.ToLower(kind)+".json"), append(b, '\n'), 0o644))
	}
}

func loadEvents(t testing.TB, file string) []corev1.Event {
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var evs []corev1.Event
	require.NoError(t, json.Unmarshal(b, &evs))
	return evs
}

// TestBuiltinGolden evaluates every built-in policy against the recorded
// events of its kind and compares the summaries with testdata/golden.
func TestBuiltinGolden(t *testing.T) {
	set, err := BuiltinSet()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	require.NoError(t, err)
	covered := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			for _, ev := range loadEvents(t, f) {
				o := set.Evaluate(&ev)
				require.Empty(t, o.Errors, "event %s (%s)", ev.Name, ev.Reason)
				require.NotEmpty(t, o.Policy, "a policy must match %s %s", ev.InvolvedObject.Kind, ev.Reason)
				covered[ev.InvolvedObject.Kind] = true
				if file, ok := builtinKinds[ev.InvolvedObject.Kind]; ok {
					require.Equal(t, "builtin-"+file, o.Policy, "the kind's own policy handles %s", ev.Reason)
				}
				var links []string
				for _, l := range o.Links {
					links = append(links, fmt.Sprintf("%s=%s/%s", l.Marker, l.Resource.Kind, l.Resource.Name))
				}
				sort.Strings(links)
				fmt.Fprintf(&b, "%s/%s count=%d\n  %s:%s\n  %s\n  links: %s\n", ev.InvolvedObject.Kind, ev.Reason, ev.Count,
					o.Policy, o.Rule, o.Summary, strings.Join(links, ", "))
			}
			golden := filepath.Join("testdata", "golden", name+".golden")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, []byte(b.String()), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./internal/activity -run TestBuiltinGolden -update")
			require.Equal(t, string(want), b.String())
		})
	}
	for kind := range builtinKinds {
		require.True(t, covered[kind], "no recorded events of kind %s: re-record with -record", kind)
	}
}
