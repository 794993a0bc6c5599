// Package tenancy checks tenant isolation end to end (issue 5): every kind
// of caller against every verb of the Events API in both groups, through a
// real API server, JetStream and ClickHouse.
package tenancy

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

const ns = "demo"

// Extra users beside dev mode's admin, alice (Project/alpha) and bob
// (Project/beta): one with a parent type eventpipe does not know, one with
// a type but no name.
const extraTokens = `tok-odd,odd,odd,"","iam.miloapis.com/parent-type=Team,iam.miloapis.com/parent-name=x"
tok-half,half,half,"","iam.miloapis.com/parent-type=Project"
`

type callers struct {
	admin, alice, bob, forged, odd, half, anonymous *kubernetes.Clientset
}

func clientFor(t *testing.T, base *rest.Config, token string, headers http.Header) *kubernetes.Clientset {
	cfg := rest.AnonymousClientConfig(base)
	cfg.BearerToken = token
	if headers != nil {
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return roundTripper(func(r *http.Request) (*http.Response, error) {
				r = r.Clone(r.Context())
				for k, v := range headers {
					r.Header[k] = v
				}
				return rt.RoundTrip(r)
			})
		}
	}
	cs := devtest.NewClient(t, cfg)
	configs.Store(cs, cfg)
	return cs
}

// configs remembers each client's configuration, for dynamic clients with
// the same identity.
var configs sync.Map

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func setup(t *testing.T) (*devtest.Stack, callers) {
	dir := filepath.Join(t.TempDir(), "data")
	s := devtest.New(t, func(o *devenv.Options) {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "apiserver"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "apiserver", "tokens.csv"), []byte(extraTokens), 0o600))
		o.DataDir = dir
	})
	token := func(user string) string {
		b, err := os.ReadFile(filepath.Join(dir, "apiserver", "tokens.csv"))
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ",")
			if len(f) > 1 && f[1] == user {
				return f[0]
			}
		}
		t.Fatalf("no token for %s", user)
		return ""
	}
	base := s.Cfg
	return s, callers{
		admin: clientFor(t, base, token("admin"), nil),
		alice: clientFor(t, base, token("alice"), nil),
		bob:   clientFor(t, base, token("bob"), nil),
		// bob's token with front-proxy headers claiming alice's tenant, sent
		// by a client that is not the front proxy: the headers are ignored.
		forged: clientFor(t, base, token("bob"), http.Header{
			"X-Remote-User":  {"alice"},
			"X-Remote-Group": {"system:masters"},
			"X-Remote-Extra-Iam.miloapis.com%2fparent-type": {"Project"},
			"X-Remote-Extra-Iam.miloapis.com%2fparent-name": {"alpha"},
		}),
		odd:       clientFor(t, base, "tok-odd", nil),
		half:      clientFor(t, base, "tok-half", nil),
		anonymous: clientFor(t, base, "", nil),
	}
}

func newEvent(name string, annotations map[string]string) *corev1.Event {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1", APIVersion: "v1"},
		Reason:         "Started", Message: "started " + name, Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
}

func scoped(typ, name string) map[string]string {
	return map[string]string{scope.AnnotationType: typ, scope.AnnotationName: name}
}

// visible lists the names in ns through both groups, which must agree
// when they answer at the same resourceVersion.
func visible(t *testing.T, cs *kubernetes.Clientset) ([]string, error) {
	ctx := context.Background()
	core, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	at := metav1.ListOptions{ResourceVersion: core.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact}
	if core.ResourceVersion == "0" { // nothing written yet: exact is refused for 0
		at = metav1.ListOptions{}
	}
	ev1, err := cs.EventsV1().Events(ns).List(ctx, at)
	require.NoError(t, err, "core/v1 list worked, events.k8s.io/v1 must too")
	var a, b []string
	for _, e := range core.Items {
		a = append(a, e.Name)
	}
	for _, e := range ev1.Items {
		b = append(b, e.Name)
	}
	sort.Strings(a)
	sort.Strings(b)
	require.Equal(t, a, b, "both groups show the same events")
	return a, nil
}

// scopeOf reads an event's stored scope as the admin sees it.
func scopeOf(t *testing.T, c callers, name string) string {
	ev, err := c.admin.CoreV1().Events(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return ev.Annotations[scope.AnnotationType] + "/" + ev.Annotations[scope.AnnotationName]
}

func TestIsolationMatrix(t *testing.T) {
	s, c := setup(t)
	ctx := context.Background()
	for _, e := range []*corev1.Event{
		newEvent("alpha-ev", scoped("Project", "alpha")),
		newEvent("beta-ev", scoped("Project", "beta")),
		newEvent("platform-ev", nil),
	} {
		_, err := c.admin.CoreV1().Events(ns).Create(ctx, e, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	// Lists answer at the writer's watermark: wait until it has everything.
	waitVisible(t, c.admin, []string{"alpha-ev", "beta-ev", "platform-ev"})
	_ = s

	t.Run("refused callers", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cs   *kubernetes.Clientset
			msg  string
		}{
			{"unknown parent type", c.odd, `the user has an unknown iam.miloapis.com/parent-type "Team"; allowed (exact case): Organization, Project, User`},
			{"type without name", c.half, `the user has the user extra iam.miloapis.com/parent-type "Project" but no iam.miloapis.com/parent-name; both are required`},
			{"anonymous", c.anonymous, `the user has no tenant scope`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for verb, err := range everyVerb(ctx, tc.cs) {
					require.True(t, apierrors.IsForbidden(err), "%s: want 403, got %v", verb, err)
					require.Contains(t, err.Error(), tc.msg, verb)
				}
			})
		}
	})

	t.Run("tenant reads", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cs   *kubernetes.Clientset
			want []string
		}{
			{"admin", c.admin, []string{"alpha-ev", "beta-ev", "platform-ev"}},
			{"alice", c.alice, []string{"alpha-ev"}},
			{"bob", c.bob, []string{"beta-ev"}},
			{"forged headers act as bob", c.forged, []string{"beta-ev"}},
		} {
			got, err := visible(t, tc.cs)
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.want, got, tc.name)
			for _, name := range []string{"alpha-ev", "beta-ev", "platform-ev"} {
				_, err := tc.cs.CoreV1().Events(ns).Get(ctx, name, metav1.GetOptions{})
				_, err1 := tc.cs.EventsV1().Events(ns).Get(ctx, name, metav1.GetOptions{})
				if contains(tc.want, name) {
					require.NoError(t, err, "%s get %s", tc.name, name)
					require.NoError(t, err1, "%s get %s (events.k8s.io)", tc.name, name)
				} else {
					require.True(t, apierrors.IsNotFound(err), "%s get %s: want 404, got %v", tc.name, name, err)
					require.True(t, apierrors.IsNotFound(err1), "%s get %s (events.k8s.io): want 404, got %v", tc.name, name, err1)
				}
			}
		}
	})

	t.Run("continue tokens do not cross tenants", func(t *testing.T) {
		_, err := c.admin.CoreV1().Events(ns).Create(ctx, newEvent("beta-ev2", scoped("Project", "beta")), metav1.CreateOptions{})
		require.NoError(t, err)
		waitVisible(t, c.bob, []string{"beta-ev", "beta-ev2"})
		page, err := c.bob.CoreV1().Events(ns).List(ctx, metav1.ListOptions{Limit: 1})
		require.NoError(t, err)
		require.NotEmpty(t, page.Continue)
		_, err = c.alice.CoreV1().Events(ns).List(ctx, metav1.ListOptions{Limit: 1, Continue: page.Continue})
		require.True(t, apierrors.IsBadRequest(err), "want 400, got %v", err)
		require.Contains(t, err.Error(), "continue key is not valid: it was issued to another tenant")
		next, err := c.bob.CoreV1().Events(ns).List(ctx, metav1.ListOptions{Limit: 1, Continue: page.Continue})
		require.NoError(t, err, "the token still works for its owner")
		require.Len(t, next.Items, 1)
	})

	t.Run("watch is narrowed to the tenant", func(t *testing.T) {
		watches := map[string]watch.Interface{}
		for name, cs := range map[string]*kubernetes.Clientset{"admin": c.admin, "alice": c.alice, "bob": c.bob} {
			l, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
			require.NoError(t, err)
			w, err := cs.CoreV1().Events(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
			require.NoError(t, err)
			defer w.Stop()
			watches[name] = w
		}
		// Written as platform into each tenant, and by each tenant itself
		// while claiming the other tenant's scope: the claim is overwritten.
		_, err := c.admin.CoreV1().Events(ns).Create(ctx, newEvent("live-alpha", scoped("Project", "alpha")), metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = c.bob.CoreV1().Events(ns).Create(ctx, newEvent("live-bob", scoped("Project", "alpha")), metav1.CreateOptions{})
		require.NoError(t, err)
		require.Equal(t, "Project/beta", scopeOf(t, c, "live-bob"), "a tenant's scope claim is overwritten")
		_, err = c.admin.CoreV1().Events(ns).Create(ctx, newEvent("live-end", nil), metav1.CreateOptions{})
		require.NoError(t, err)

		require.Equal(t, []string{"ADDED live-alpha", "ADDED live-bob", "ADDED live-end"}, collect(t, watches["admin"], "live-end"))
		// Tenants see no platform event, so they read until a quiet period.
		require.Equal(t, []string{"ADDED live-alpha"}, collect(t, watches["alice"], ""))
		require.Equal(t, []string{"ADDED live-bob"}, collect(t, watches["bob"], ""))
	})

	t.Run("history and activities are scoped too", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cs   *kubernetes.Clientset
			want []string
		}{
			{"admin", c.admin, []string{"alpha-ev", "beta-ev", "beta-ev2", "live-alpha", "live-bob", "live-end", "platform-ev"}},
			{"alice", c.alice, []string{"alpha-ev", "live-alpha"}},
			{"bob", c.bob, []string{"beta-ev", "beta-ev2", "live-bob"}},
			{"forged headers act as bob", c.forged, []string{"beta-ev", "beta-ev2", "live-bob"}},
		} {
			dc := dynamicFor(t, tc.cs)
			waitVisible(t, tc.cs, tc.want)
			// EventQuery: the same events as the list.
			got, err := eventQueryNames(ctx, dc)
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.want, got, "%s: EventQuery", tc.name)
			// EventFacetQuery counts only the caller's events.
			total, err := facetTotal(ctx, dc)
			require.NoError(t, err, tc.name)
			require.Equal(t, int64(len(tc.want)), total, "%s: facet counts of reason", tc.name)
			// Activities: one per event the caller may see.
			require.Eventually(t, func() bool {
				names, err := activityEvents(ctx, dc)
				return err == nil && fmt.Sprint(names) == fmt.Sprint(tc.want)
			}, 20*time.Second, 200*time.Millisecond, "%s: activities of exactly its events", tc.name)
		}
		// Policies are global: a tenant may read them, not change them.
		dc := dynamicFor(t, c.alice)
		_, err := dc.Resource(activityPolicies).List(ctx, metav1.ListOptions{})
		require.NoError(t, err, "tenants may read policies")
		_, err = dc.Resource(activityPolicies).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "ActivityPolicy",
			"metadata": map[string]any{"name": "mine"},
			"spec": map[string]any{"resource": map[string]any{"kind": "Pod"}, "eventRules": []any{
				map[string]any{"name": "all", "match": "true", "summary": "x"}}},
		}}, metav1.CreateOptions{})
		require.True(t, apierrors.IsForbidden(err), "tenant policy create: want 403, got %v", err)
		require.Contains(t, err.Error(), "only platform callers may change them")

		for name, cs := range map[string]*kubernetes.Clientset{"unknown type": c.odd, "no name": c.half, "anonymous": c.anonymous} {
			dc := dynamicFor(t, cs)
			_, err := eventQueryNames(ctx, dc)
			require.True(t, apierrors.IsForbidden(err), "%s EventQuery: want 403, got %v", name, err)
			_, err = facetTotal(ctx, dc)
			require.True(t, apierrors.IsForbidden(err), "%s EventFacetQuery: want 403, got %v", name, err)
			_, err = activityEvents(ctx, dc)
			require.True(t, apierrors.IsForbidden(err), "%s activities: want 403, got %v", name, err)
		}
	})

	t.Run("tenant writes", func(t *testing.T) {
		// alice cannot touch bob's event: patch and delete do not find it,
		// and an update by name creates alice's own event of that name
		// (Events allow create on update), leaving bob's alone.
		patch := []byte(`{"count":7}`)
		_, err := c.alice.CoreV1().Events(ns).Patch(ctx, "beta-ev", types.MergePatchType, patch, metav1.PatchOptions{})
		require.True(t, apierrors.IsNotFound(err), "patch: %v", err)
		err = c.alice.CoreV1().Events(ns).Delete(ctx, "beta-ev", metav1.DeleteOptions{})
		require.True(t, apierrors.IsNotFound(err), "delete: %v", err)
		err = c.alice.EventsV1().Events(ns).Delete(ctx, "beta-ev", metav1.DeleteOptions{})
		require.True(t, apierrors.IsNotFound(err), "delete (events.k8s.io): %v", err)
		_, err = c.alice.CoreV1().Events(ns).Update(ctx, newEvent("beta-ev", scoped("Project", "beta")), metav1.UpdateOptions{})
		require.NoError(t, err)
		bobs, err := c.bob.CoreV1().Events(ns).Get(ctx, "beta-ev", metav1.GetOptions{})
		require.NoError(t, err)
		require.EqualValues(t, 1, bobs.Count)
		alices, err := c.alice.CoreV1().Events(ns).Get(ctx, "beta-ev", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, "alpha", alices.Annotations[scope.AnnotationName], "stamped with alice's scope")
		require.NotEqual(t, bobs.UID, alices.UID)

		// alice's own event: patch works, and cannot move it to bob.
		p, err := c.alice.CoreV1().Events(ns).Patch(ctx, "alpha-ev", types.MergePatchType,
			[]byte(`{"count":7,"metadata":{"annotations":{"platform.miloapis.com/scope.name":"beta"}}}`), metav1.PatchOptions{})
		require.NoError(t, err)
		require.EqualValues(t, 7, p.Count)
		require.Equal(t, "alpha", p.Annotations[scope.AnnotationName], "the scope annotation follows the stored scope")
		_, err = c.bob.CoreV1().Events(ns).Get(ctx, "alpha-ev", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "%v", err)

		// deletecollection deletes only the caller's events (those its list
		// holds: wait until the list has alice's beta-ev).
		waitVisible(t, c.alice, []string{"alpha-ev", "beta-ev", "live-alpha"})
		require.NoError(t, c.alice.CoreV1().Events(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}))
		waitVisible(t, c.alice, nil)
		got, err := visible(t, c.bob)
		require.NoError(t, err)
		require.Equal(t, []string{"beta-ev", "beta-ev2", "live-bob"}, got)
		got, err = visible(t, c.admin)
		require.NoError(t, err)
		require.Equal(t, []string{"beta-ev", "beta-ev2", "live-bob", "live-end", "platform-ev"}, got)
	})
}

// everyVerb runs each verb of both groups once and returns its error.
func everyVerb(ctx context.Context, cs *kubernetes.Clientset) map[string]error {
	errs := map[string]error{}
	core, ev1 := cs.CoreV1().Events(ns), cs.EventsV1().Events(ns)
	_, errs["core list"] = core.List(ctx, metav1.ListOptions{})
	_, errs["core list all namespaces"] = cs.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	_, errs["core get"] = core.Get(ctx, "alpha-ev", metav1.GetOptions{})
	_, errs["core create"] = core.Create(ctx, newEvent("x-new", nil), metav1.CreateOptions{})
	_, errs["core update"] = core.Update(ctx, newEvent("alpha-ev", nil), metav1.UpdateOptions{})
	_, errs["core patch"] = core.Patch(ctx, "alpha-ev", types.MergePatchType, []byte(`{"count":2}`), metav1.PatchOptions{})
	errs["core delete"] = core.Delete(ctx, "alpha-ev", metav1.DeleteOptions{})
	errs["core deletecollection"] = core.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	w, err := core.Watch(ctx, metav1.ListOptions{})
	if err == nil {
		w.Stop()
	}
	errs["core watch"] = err
	_, errs["events.k8s.io list"] = ev1.List(ctx, metav1.ListOptions{})
	_, errs["events.k8s.io get"] = ev1.Get(ctx, "alpha-ev", metav1.GetOptions{})
	_, errs["events.k8s.io create"] = ev1.Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "x-new1", Namespace: ns}, EventTime: metav1.NowMicro(),
		ReportingController: "c", ReportingInstance: "i", Action: "A", Reason: "R", Type: "Normal",
		Regarding: corev1.ObjectReference{Kind: "Pod", Name: "p", Namespace: ns},
	}, metav1.CreateOptions{})
	_, errs["events.k8s.io patch"] = ev1.Patch(ctx, "alpha-ev", types.MergePatchType, []byte(`{"note":"x"}`), metav1.PatchOptions{})
	errs["events.k8s.io delete"] = ev1.Delete(ctx, "alpha-ev", metav1.DeleteOptions{})
	w, err = ev1.Watch(ctx, metav1.ListOptions{})
	if err == nil {
		w.Stop()
	}
	errs["events.k8s.io watch"] = err
	return errs
}

func waitVisible(t *testing.T, cs *kubernetes.Clientset, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := visible(t, cs)
		require.NoError(t, err)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("visible: got %v, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// collect reads a watch until it delivers the event named last, or, with
// last empty, until it has been quiet for two seconds.
func collect(t *testing.T, w watch.Interface, last string) []string {
	t.Helper()
	var got []string
	quiet := 2 * time.Second
	if last != "" {
		quiet = 20 * time.Second
	}
	for {
		select {
		case e, ok := <-w.ResultChan():
			require.True(t, ok, "watch closed early after %v", got)
			ev, isEvent := e.Object.(*corev1.Event)
			require.True(t, isEvent, "%s %T", e.Type, e.Object)
			got = append(got, fmt.Sprintf("%s %s", e.Type, ev.Name))
			if ev.Name == last {
				return got
			}
		case <-time.After(quiet):
			if last != "" {
				t.Fatalf("no %s within %s; got %v", last, quiet, got)
			}
			return got
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var (
	eventQueries      = schema.GroupVersionResource{Group: "activity.miloapis.com", Version: "v1alpha1", Resource: "eventqueries"}
	eventFacetQueries = schema.GroupVersionResource{Group: "activity.miloapis.com", Version: "v1alpha1", Resource: "eventfacetqueries"}
	activities        = schema.GroupVersionResource{Group: "activity.miloapis.com", Version: "v1alpha1", Resource: "activities"}
	activityPolicies  = schema.GroupVersionResource{Group: "activity.miloapis.com", Version: "v1alpha1", Resource: "activitypolicies"}
)

// dynamicFor returns a dynamic client with cs's identity.
func dynamicFor(t *testing.T, cs *kubernetes.Clientset) *dynamic.DynamicClient {
	cfg, ok := configs.Load(cs)
	require.True(t, ok)
	dc, err := dynamic.NewForConfig(cfg.(*rest.Config))
	require.NoError(t, err)
	return dc
}

// eventQueryNames runs an EventQuery over the last hour in ns and returns
// the names it finds, sorted.
func eventQueryNames(ctx context.Context, dc *dynamic.DynamicClient) ([]string, error) {
	q := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "EventQuery",
		"metadata": map[string]any{"name": "q"},
		"spec":     map[string]any{"startTime": "now-1h", "endTime": "now", "namespace": ns, "limit": int64(1000)},
	}}
	out, err := dc.Resource(eventQueries).Create(ctx, q, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	results, _, _ := unstructured.NestedSlice(out.Object, "status", "results")
	var names []string
	for _, r := range results {
		n, _, _ := unstructured.NestedString(r.(map[string]any), "metadata", "name")
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// facetTotal sums the counts of the reason facet over the last hour in ns.
func facetTotal(ctx context.Context, dc *dynamic.DynamicClient) (int64, error) {
	q := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "EventFacetQuery",
		"metadata": map[string]any{"name": "f"},
		"spec": map[string]any{"startTime": "now-1h", "endTime": "now", "namespace": ns,
			"facets": []any{map[string]any{"field": "reason"}}},
	}}
	out, err := dc.Resource(eventFacetQueries).Create(ctx, q, metav1.CreateOptions{})
	if err != nil {
		return 0, err
	}
	facets, _, _ := unstructured.NestedSlice(out.Object, "status", "facets")
	var total int64
	for _, f := range facets {
		values, _, _ := unstructured.NestedSlice(f.(map[string]any), "values")
		for _, v := range values {
			n, _, _ := unstructured.NestedInt64(v.(map[string]any), "count")
			total += n
		}
	}
	return total, nil
}

// activityEvents lists the activities in ns and returns the names of the
// events they were made from, sorted.
func activityEvents(ctx context.Context, dc *dynamic.DynamicClient) ([]string, error) {
	l, err := dc.Resource(activities).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, it := range l.Items {
		n, _, _ := unstructured.NestedString(it.Object, "spec", "origin", "eventName")
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
