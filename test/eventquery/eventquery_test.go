package eventquery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/internal/registry/eventquery"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

const basePath = "/apis/activity.miloapis.com/v1alpha1/"

type harness struct {
	t    *testing.T
	cs   *kubernetes.Clientset
	kcfg string
	m    model
}

// kubectlCreate runs `kubectl create -f` on obj and decodes the -o yaml
// answer into out.
func (h *harness) kubectlCreate(obj any, out any) {
	h.t.Helper()
	b, err := yaml.Marshal(obj)
	require.NoError(h.t, err)
	f := filepath.Join(h.t.TempDir(), "query.yaml")
	require.NoError(h.t, os.WriteFile(f, b, 0o644))
	stdout, stderr, err := kubetest.Kubectl(h.t, h.kcfg, "create", "-f", f, "-o", "yaml")
	require.NoError(h.t, err, "kubectl create -f:\n%s\n%s", b, stderr)
	require.NoError(h.t, yaml.Unmarshal([]byte(stdout), out))
}

func eventQuery(spec v1alpha1.EventQuerySpec) *v1alpha1.EventQuery {
	return &v1alpha1.EventQuery{TypeMeta: metav1.TypeMeta{APIVersion: "activity.miloapis.com/v1alpha1", Kind: "EventQuery"},
		ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: spec}
}

func resultNames(q *v1alpha1.EventQuery) []string {
	out := make([]string, len(q.Status.Results))
	for i, ev := range q.Status.Results {
		out[i] = ev.Namespace + "/" + ev.Name
	}
	return out
}

// post sends a query through the REST client and returns the API error.
func (h *harness) post(resource string, body any) (*v1alpha1.EventQuery, error) {
	b, err := json.Marshal(body)
	require.NoError(h.t, err)
	raw, err := h.cs.Discovery().RESTClient().Post().AbsPath(basePath+resource).Body(b).
		SetHeader("Content-Type", "application/json").Do(context.Background()).Raw()
	if err != nil {
		// The discovery client has no scheme to decode a Status with.
		var st metav1.Status
		if json.Unmarshal(raw, &st) == nil && st.Kind == "Status" {
			return nil, &apierrors.StatusError{ErrStatus: st}
		}
		return nil, err
	}
	var q v1alpha1.EventQuery
	require.NoError(h.t, json.Unmarshal(raw, &q))
	return &q, nil
}

func TestEventQuery(t *testing.T) {
	cs, env := startStack(t)
	ctx := context.Background()
	h := &harness{t: t, cs: cs, kcfg: env.Kubeconfig, m: model{}}
	now := time.Now().UTC()

	// The history: 90 events over ~6 days; some updated afterwards (new
	// reason and type, later time), one deleted.
	for _, ev := range seedEvents(now, 90, "seed") {
		created, err := cs.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
		require.NoError(t, err)
		h.m[key(created)] = created
	}
	for i, k := range []string{"prod/seed-00.1800000000", "dev/seed-01.1800000001", "kube-system/seed-02.1800000002"} {
		ev := h.m[k].DeepCopy()
		ev.Reason, ev.Type, ev.Count = "Recovered", corev1.EventTypeNormal, 2
		ev.LastTimestamp = metav1.NewTime(now.Add(-time.Duration(i+1) * time.Minute).Truncate(time.Second))
		up, err := cs.CoreV1().Events(ev.Namespace).Update(ctx, ev, metav1.UpdateOptions{})
		require.NoError(t, err)
		h.m[k] = up
	}
	del := h.m["prod/seed-03.1800000003"]
	require.NoError(t, cs.CoreV1().Events("prod").Delete(ctx, del.Name, metav1.DeleteOptions{}))
	delete(h.m, key(del))
	// EventQuery reads at the writer's watermark: wait for it.
	require.Eventually(t, func() bool {
		q, err := h.post("eventqueries", eventQuery(v1alpha1.EventQuerySpec{StartTime: "now-7d", EndTime: "now", Limit: 1000}))
		return err == nil && len(q.Status.Results) == len(h.m)
	}, 30*time.Second, 100*time.Millisecond)

	t.Run("the brief's query through kubectl create -f -o yaml", func(t *testing.T) {
		day := now.Truncate(24 * time.Hour)
		start, end := day.Add(-5*24*time.Hour), day
		if end.Sub(start) < time.Hour || now.Sub(end) < time.Minute {
			end = now.Add(-time.Minute).Truncate(time.Second)
		}
		var got v1alpha1.EventQuery
		h.kubectlCreate(eventQuery(v1alpha1.EventQuerySpec{StartTime: start.Format(time.RFC3339), EndTime: end.Format(time.RFC3339),
			FieldSelector: "type=Warning", Limit: 100}), &got)
		want := h.m.query(start, end, "", "type=Warning")
		require.NotEmpty(t, want)
		require.Equal(t, names(want), resultNames(&got))
		require.True(t, got.Status.EffectiveStartTime.Time.Equal(start))
		require.True(t, got.Status.EffectiveEndTime.Time.Equal(end))
		rv, err := strconv.ParseUint(got.Status.ResourceVersion, 10, 64)
		require.NoError(t, err, "status.resourceVersion")
		for _, ev := range got.Status.Results {
			evRV, err := strconv.ParseUint(ev.ResourceVersion, 10, 64)
			require.NoError(t, err)
			require.LessOrEqual(t, evRV, rv, "no state newer than the answer's resourceVersion")
		}
		for _, ev := range got.Status.Results {
			require.Equal(t, "Warning", ev.Type, "each event in its latest state")
			require.Equal(t, "events.k8s.io/v1", ev.APIVersion)
		}
		require.Empty(t, got.Status.Continue)
	})

	t.Run("relative times", func(t *testing.T) {
		for _, c := range []struct {
			start, end string
			length     time.Duration
		}{{"now-7d", "now", 7 * 24 * time.Hour}, {"now-1w", "now-30m", 7*24*time.Hour - 30*time.Minute}, {"now-2h", "now", 2 * time.Hour},
			{"now-3d", "now-1d", 2 * 24 * time.Hour}, {"now-90m", "now-45s", 90*time.Minute - 45*time.Second}} {
			var got v1alpha1.EventQuery
			before := time.Now().Add(-time.Second)
			h.kubectlCreate(eventQuery(v1alpha1.EventQuerySpec{StartTime: c.start, EndTime: c.end, Limit: 1000}), &got)
			s, e := got.Status.EffectiveStartTime.Time, got.Status.EffectiveEndTime.Time
			require.Equal(t, c.length, e.Sub(s), c)
			require.True(t, !s.Add(c.length).Before(before.Add(-c.length).Truncate(time.Second)), c)
			require.Equal(t, names(h.m.query(s, e, "", "")), resultNames(&got), c)
		}
	})

	t.Run("every field selector form", func(t *testing.T) {
		for _, sel := range []string{
			"type=Warning", "type==Warning", "type!=Warning",
			"reason in (BackOff,FailedMount)", "reason notin (BackOff, FailedMount)", "reason=Recovered",
			"involvedObject.kind=Pod", "regarding.kind=Deployment", "involvedObject.namespace=dev", "regarding.namespace!=dev",
			"involvedObject.name=obj-3", "regarding.name in (obj-1,obj-2)", "involvedObject.apiVersion=v1", "regarding.fieldPath=",
			"source=kubelet", "source=deployment-controller", "reportingController=deployment-controller", "reportingComponent!=deployment-controller",
			"related.kind=Node", "related.kind in (ReplicaSet)", "related.namespace=prod", "related.name=web-1",
			"metadata.namespace=prod", "metadata.name=seed-10.180000000a", "metadata.name notin (seed-10.180000000a)",
			"type=Warning,regarding.kind=Pod,reason in (BackOff,FailedMount,Pulling)",
		} {
			t.Run(sel, func(t *testing.T) {
				var got v1alpha1.EventQuery
				h.kubectlCreate(eventQuery(v1alpha1.EventQuerySpec{StartTime: "now-7d", EndTime: "now", FieldSelector: sel, Limit: 1000}), &got)
				want := h.m.query(got.Status.EffectiveStartTime.Time, got.Status.EffectiveEndTime.Time, "", sel)
				require.Equal(t, names(want), resultNames(&got))
			})
		}
		var got v1alpha1.EventQuery
		h.kubectlCreate(eventQuery(v1alpha1.EventQuerySpec{StartTime: "now-7d", EndTime: "now", Namespace: "prod", FieldSelector: "type=Warning"}), &got)
		require.Equal(t, names(h.m.query(got.Status.EffectiveStartTime.Time, got.Status.EffectiveEndTime.Time, "prod", "type=Warning")), resultNames(&got))
	})

	t.Run("pages while events are written", func(t *testing.T) {
		spec := v1alpha1.EventQuerySpec{StartTime: "now-7d", EndTime: "now", Limit: 10}
		var first v1alpha1.EventQuery
		h.kubectlCreate(eventQuery(spec), &first)
		want := names(h.m.query(first.Status.EffectiveStartTime.Time, first.Status.EffectiveEndTime.Time, "", ""))
		got := resultNames(&first)
		cont := first.Status.Continue
		pages := 1
		for i := 0; cont != ""; i++ {
			// Between pages: new events inside the window, and updates that
			// move existing events to the front of the order.
			for j, ev := range seedEvents(now.Add(-time.Duration(i)*time.Minute), 3, fmt.Sprintf("live%d", i)) {
				created, err := cs.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
				require.NoError(t, err)
				h.m[key(created)] = created
				k := want[(i*7+j*13)%len(want)]
				if cur, ok := h.m[k]; ok {
					up := cur.DeepCopy()
					up.Count++
					up.LastTimestamp = metav1.NewTime(time.Now().Add(-time.Second).Truncate(time.Second))
					up, err = cs.CoreV1().Events(up.Namespace).Update(ctx, up, metav1.UpdateOptions{})
					require.NoError(t, err)
					h.m[k] = up
				}
			}
			time.Sleep(150 * time.Millisecond) // let the writer commit them
			spec.Continue = cont
			var page v1alpha1.EventQuery
			h.kubectlCreate(eventQuery(spec), &page)
			require.True(t, page.Status.EffectiveStartTime.Equal(first.Status.EffectiveStartTime), "the window does not slide")
			require.Equal(t, first.Status.ResourceVersion, page.Status.ResourceVersion, "every page answers at the first page's resourceVersion")
			got = append(got, resultNames(&page)...)
			cont = page.Status.Continue
			pages++
		}
		require.GreaterOrEqual(t, pages, 5)
		require.Equal(t, want, got, "every event of the first page's snapshot exactly once, in order")
	})

	t.Run("facets and histogram equal brute force", func(t *testing.T) {
		h.m = h.currentModel(t)
		for _, sel := range []string{"", "type=Warning", "reason in (BackOff,Pulling)"} {
			fq := &v1alpha1.EventFacetQuery{TypeMeta: metav1.TypeMeta{APIVersion: "activity.miloapis.com/v1alpha1", Kind: "EventFacetQuery"},
				ObjectMeta: metav1.ObjectMeta{Name: "f"},
				Spec:       v1alpha1.EventFacetQuerySpec{FieldSelector: sel, Histogram: &v1alpha1.HistogramSpec{BucketSize: "6h"}}}
			for _, name := range chstore.FacetNames() {
				fq.Spec.Facets = append(fq.Spec.Facets, v1alpha1.FacetSpec{Field: name, Limit: 100})
			}
			var got v1alpha1.EventFacetQuery
			h.kubectlCreate(fq, &got)
			s, e := got.Status.EffectiveStartTime.Time, got.Status.EffectiveEndTime.Time
			require.WithinDuration(t, s.Add(7*24*time.Hour), e, time.Second, "default window: the last 7 days")
			matched := h.m.query(s, e, "", sel)
			require.EqualValues(t, len(matched), got.Status.Total)
			counts := map[string]map[string]int64{}
			buckets := make([]int64, chstore.BucketCount(s, e, 6*time.Hour))
			for _, ev := range matched {
				for f, v := range facetValues(ev) {
					if v == "" {
						continue
					}
					if counts[f] == nil {
						counts[f] = map[string]int64{}
					}
					counts[f][v]++
				}
				buckets[lastSeen(ev).Sub(s.Truncate(time.Second))/(6*time.Hour)]++
			}
			for _, fr := range got.Status.Facets {
				gotCounts := map[string]int64{}
				for _, v := range fr.Values {
					gotCounts[v.Value] = v.Count
				}
				if counts[fr.Field] == nil {
					counts[fr.Field] = map[string]int64{}
				}
				require.Equal(t, counts[fr.Field], gotCounts, "facet %s, selector %q", fr.Field, sel)
				require.True(t, sort.SliceIsSorted(fr.Values, func(i, j int) bool { return fr.Values[i].Count > fr.Values[j].Count }))
			}
			require.Equal(t, "6h", got.Status.Histogram.BucketSize)
			var gotBuckets []int64
			for i, b := range got.Status.Histogram.Buckets {
				require.True(t, b.StartTime.Time.Equal(s.Truncate(time.Second).Add(time.Duration(i)*6*time.Hour)))
				gotBuckets = append(gotBuckets, b.Count)
			}
			require.Equal(t, buckets, gotBuckets)
		}
	})

	t.Run("bad input is a 422 naming the field", func(t *testing.T) {
		ok := v1alpha1.EventQuerySpec{StartTime: "now-1d", EndTime: "now"}
		with := func(f func(*v1alpha1.EventQuerySpec)) *v1alpha1.EventQuery {
			s := ok
			f(&s)
			return eventQuery(s)
		}
		var page v1alpha1.EventQuery
		h.kubectlCreate(eventQuery(v1alpha1.EventQuerySpec{StartTime: "now-7d", EndTime: "now", Limit: 1}), &page)
		require.NotEmpty(t, page.Status.Continue)
		tampered := []byte(page.Status.Continue)
		tampered[5] ^= 1
		for _, c := range []struct {
			name string
			q    any
			path string
			msg  string
		}{
			{"missing start", with(func(s *v1alpha1.EventQuerySpec) { s.StartTime = "" }), "spec.startTime", "Required value"},
			{"missing end", with(func(s *v1alpha1.EventQuerySpec) { s.EndTime = "" }), "spec.endTime", "Required value"},
			{"unparsable start", with(func(s *v1alpha1.EventQuerySpec) { s.StartTime = "yesterday" }), "spec.startTime", "RFC 3339"},
			{"unparsable end", with(func(s *v1alpha1.EventQuerySpec) { s.EndTime = "now-3y" }), "spec.endTime", "now-30m"},
			{"future end", with(func(s *v1alpha1.EventQuerySpec) { s.EndTime = time.Now().Add(time.Hour).Format(time.RFC3339) }), "spec.endTime", "future"},
			{"end before start", with(func(s *v1alpha1.EventQuerySpec) { s.StartTime, s.EndTime = "now-1h", "now-2h" }), "spec.endTime", "after spec.startTime"},
			{"end equals start", with(func(s *v1alpha1.EventQuerySpec) { s.StartTime, s.EndTime = "now-1h", "now-1h" }), "spec.endTime", "after spec.startTime"},
			// The caller's tier decides the window (60 days by default; the
			// platform admin's tier may allow more): 400 days is beyond any.
			{"beyond the tier", with(func(s *v1alpha1.EventQuerySpec) { s.StartTime = "now-400d" }), "spec.startTime", `may query the last`},
			{"beyond the tier, absolute", with(func(s *v1alpha1.EventQuerySpec) {
				s.StartTime, s.EndTime = time.Now().Add(-400*24*time.Hour).Format(time.RFC3339), time.Now().Add(-390*24*time.Hour).Format(time.RFC3339)
			}), "spec.startTime", "counted back from now"},
			{"negative limit", with(func(s *v1alpha1.EventQuerySpec) { s.Limit = -1 }), "spec.limit", "from 1 to 1000"},
			{"too large limit", with(func(s *v1alpha1.EventQuerySpec) { s.Limit = 1001 }), "spec.limit", "from 1 to 1000"},
			{"unknown selector field", with(func(s *v1alpha1.EventQuerySpec) { s.FieldSelector = "color=red" }), "spec.fieldSelector", `unknown field "color"`},
			{"malformed selector", with(func(s *v1alpha1.EventQuerySpec) { s.FieldSelector = "reason in (BackOff" }), "spec.fieldSelector", "unclosed"},
			{"bad namespace", with(func(s *v1alpha1.EventQuerySpec) { s.Namespace = "Not_A_Namespace" }), "spec.namespace", "RFC 1123"},
			{"tampered cursor", eventQuery(v1alpha1.EventQuerySpec{StartTime: "now-7d", EndTime: "now", Limit: 1, Continue: string(tampered)}), "spec.continue", "not issued by this server"},
			{"foreign cursor", eventQuery(v1alpha1.EventQuerySpec{StartTime: "now-7d", EndTime: "now", Limit: 1, FieldSelector: "type=Warning", Continue: page.Status.Continue}), "spec.continue", "different query or caller"},
			{"unknown facet", &v1alpha1.EventFacetQuery{ObjectMeta: metav1.ObjectMeta{Name: "f"}, Spec: v1alpha1.EventFacetQuerySpec{Facets: []v1alpha1.FacetSpec{{Field: "color"}}}},
				"spec.facets[0].field", "supported values"},
			{"too many facets", &v1alpha1.EventFacetQuery{ObjectMeta: metav1.ObjectMeta{Name: "f"}, Spec: v1alpha1.EventFacetQuerySpec{Facets: make([]v1alpha1.FacetSpec, 9)}},
				"spec.facets", "must have at most 8 items"},
			{"facet limit", &v1alpha1.EventFacetQuery{ObjectMeta: metav1.ObjectMeta{Name: "f"}, Spec: v1alpha1.EventFacetQuerySpec{Facets: []v1alpha1.FacetSpec{{Field: "reason", Limit: 101}}}},
				"spec.facets[0].limit", "from 1 to 100"},
			{"too many buckets", &v1alpha1.EventFacetQuery{ObjectMeta: metav1.ObjectMeta{Name: "f"}, Spec: v1alpha1.EventFacetQuerySpec{Histogram: &v1alpha1.HistogramSpec{BucketSize: "1m"}}},
				"spec.histogram.bucketSize", "at most 1000"},
			{"facet window beyond the tier", &v1alpha1.EventFacetQuery{ObjectMeta: metav1.ObjectMeta{Name: "f"}, Spec: v1alpha1.EventFacetQuerySpec{StartTime: "now-400d"}},
				"spec.startTime", "may query the last"},
		} {
			t.Run(c.name, func(t *testing.T) {
				resource := "eventqueries"
				if _, ok := c.q.(*v1alpha1.EventFacetQuery); ok {
					resource = "eventfacetqueries"
				}
				_, err := h.post(resource, c.q)
				require.Error(t, err)
				st, ok := err.(apierrors.APIStatus)
				require.True(t, ok, "%T %v", err, err)
				require.EqualValues(t, http.StatusUnprocessableEntity, st.Status().Code, "%v", err)
				require.Contains(t, err.Error(), c.path)
				require.Contains(t, err.Error(), c.msg)
			})
		}
	})

	t.Run("expired cursor is 410", func(t *testing.T) {
		signer, err := eventquery.NewSigner(cursorKey, time.Hour)
		require.NoError(t, err)
		spec := v1alpha1.EventQuerySpec{StartTime: "now-7d", EndTime: "now", Limit: 1}
		old := time.Now().Add(-2 * time.Hour)
		spec.Continue = signer.Encode(eventquery.Binding{Kind: "EventQuery", StartTime: spec.StartTime, EndTime: spec.EndTime},
			eventquery.Cursor{Window: eventquery.Window{Start: old.Add(-24 * time.Hour), End: old}, AtSeq: 1, IssuedAt: old})
		_, err = h.post("eventqueries", eventQuery(spec))
		require.True(t, apierrors.IsResourceExpired(err) || apierrors.IsGone(err), "%v", err)
		require.Contains(t, err.Error(), "expired")
		require.Contains(t, err.Error(), "without spec.continue")
	})

	t.Run("kubectl explain and discovery", func(t *testing.T) {
		out, stderr, err := kubetest.Kubectl(t, env.Kubeconfig, "explain", "eventquery.spec")
		require.NoError(t, err, stderr)
		for _, f := range []string{"startTime", "endTime", "namespace", "fieldSelector", "limit", "continue", "now-7d", "reason in (BackOff,FailedMount)"} {
			require.Contains(t, out, f)
		}
		out, stderr, err = kubetest.Kubectl(t, env.Kubeconfig, "api-resources", "--api-group", "activity.miloapis.com", "-o", "wide")
		require.NoError(t, err, stderr)
		require.Regexp(t, `eventqueries\s+activity.miloapis.com/v1alpha1\s+false\s+EventQuery\s+create\s`, out)
		require.Regexp(t, `eventfacetqueries\s+activity.miloapis.com/v1alpha1\s+false\s+EventFacetQuery\s+create\s`, out)
	})

	t.Run("kubectl eventquery plugin", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "kubectl-eventquery")
		out, err := exec.Command("go", "build", "-o", bin, "../../cmd/kubectl-eventquery").CombinedOutput()
		require.NoError(t, err, "%s", out)
		h.m = h.currentModel(t)
		run := func(args ...string) string {
			cmd := exec.Command(bin, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, stderr.String())
			return string(out)
		}
		table := run("--since", "7d", "--field-selector", "type=Warning", "-n", "prod", "--limit", "3", "--all")
		lines := strings.Split(strings.TrimSpace(table), "\n")
		want := h.m.query(time.Now().Add(-7*24*time.Hour), time.Now(), "prod", "type=Warning")
		require.Len(t, lines, len(want)+1, table)
		require.Regexp(t, `^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$`, lines[0])
		for i, ev := range want {
			require.Contains(t, lines[i+1], ev.Message, "row %d", i)
		}
		var list struct {
			Items []struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			} `json:"items"`
		}
		require.NoError(t, json.Unmarshal([]byte(run("-A", "--since", "7d", "--limit", "7", "--all", "-o", "json")), &list))
		require.Len(t, list.Items, len(h.m.query(time.Now().Add(-7*24*time.Hour), time.Now(), "", "")))
		require.Contains(t, run("--since", "7d", "-n", "dev", "-o", "yaml", "--limit", "2"), "apiVersion: events.k8s.io/v1")
	})
}

// currentModel waits until EventQuery sees exactly the model (the writes
// of earlier subtests included) and returns it. (The native list cannot
// serve as the source: it looks back 24 hours only.)
func (h *harness) currentModel(t *testing.T) model {
	t.Helper()
	require.Eventually(t, func() bool {
		q, err := h.post("eventqueries", eventQuery(v1alpha1.EventQuerySpec{StartTime: "now-7d", EndTime: "now", Limit: 1000}))
		if err != nil {
			return false
		}
		got := resultNames(q)
		want := names(h.m.query(q.Status.EffectiveStartTime.Time, q.Status.EffectiveEndTime.Time, "", ""))
		return strings.Join(got, ",") == strings.Join(want, ",")
	}, 30*time.Second, 200*time.Millisecond)
	return h.m
}
