package tenancy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

// warnings collects the Warning headers a client receives.
type warnings struct {
	mu  sync.Mutex
	got []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := w.got
	w.got = nil
	return got
}

var tenantUsages = schema.GroupVersionResource{Group: "activity.miloapis.com", Version: "v1alpha1", Resource: "tenantusages"}

const testTiers = `defaultTier: Free
tiers:
  Tight:
    queryWindow: 1h
    storageQuota: "%d"
    rateLimit: {soft: 3, hard: 5}
tenants:
  Project/alpha: Tight
  Project/beta:
    tier: Tight
    rateLimit: {soft: unlimited, hard: unlimited}
`

// TestTierLimitsThroughTheAPI: a tenant's rate limits (soft: warning, hard:
// 429 with Retry-After) and storage quota (403, nothing stored) as a client
// sees them, and a tier change taking effect without a restart.
func TestTierLimitsThroughTheAPI(t *testing.T) {
	const quotaBytes = 6000
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "apiserver"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tiers.yaml"), []byte(fmt.Sprintf(testTiers, quotaBytes)), 0o644))
	devtest.New(t, func(o *devenv.Options) { o.DataDir = dir })
	ctx := context.Background()

	tenantClient := func(file string) (*kubernetes.Clientset, *warnings) {
		cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, file))
		require.NoError(t, err)
		w := &warnings{}
		cfg.WarningHandlerWithContext = w
		cs := devtest.NewClient(t, cfg)
		configs.Store(cs, cfg)
		return cs, w
	}

	t.Run("rate limits", func(t *testing.T) {
		alice, w := tenantClient("kubeconfig-project-alpha")
		// Minutes are calendar minutes: start early in one, so that the
		// six writes fall into the same minute.
		if sec := time.Now().Second(); sec > 45 {
			time.Sleep(time.Duration(61-sec) * time.Second)
		}
		for i := 1; i <= 5; i++ {
			_, err := alice.CoreV1().Events(ns).Create(ctx, newEvent(fmt.Sprintf("rate-%d", i), nil), metav1.CreateOptions{})
			require.NoError(t, err, "write %d is within the hard limit", i)
			got := w.take()
			if i <= 3 {
				require.Empty(t, got, "write %d is within the soft limit", i)
			} else {
				require.Len(t, got, 1, "write %d is above the soft limit", i)
				require.Contains(t, got[0], "Tight")
			}
		}
		// client-go retries a 429 after its Retry-After by itself: ask
		// without retries to see the answer.
		err := alice.CoreV1().RESTClient().Post().Namespace(ns).Resource("events").MaxRetries(0).
			Body(newEvent("rate-6", nil)).Do(ctx).Error()
		require.True(t, apierrors.IsTooManyRequests(err), "want 429, got %v", err)
		secs, ok := apierrors.SuggestsClientDelay(err)
		require.True(t, ok, "429 carries Retry-After")
		require.Positive(t, secs)
		require.LessOrEqual(t, secs, 60)
		_, err = alice.CoreV1().Events(ns).Get(ctx, "rate-6", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "the refused write stored nothing: %v", err)

		// Raise the limit in the file: the running server picks it up.
		require.NoError(t, os.WriteFile(filepath.Join(dir, "tiers.yaml"),
			[]byte(strings.Replace(fmt.Sprintf(testTiers, quotaBytes), "{soft: 3, hard: 5}", "{soft: 300, hard: 500}", 1)), 0o644))
		require.Eventually(t, func() bool {
			return alice.CoreV1().RESTClient().Post().Namespace(ns).Resource("events").MaxRetries(0).
				Body(newEvent("rate-7", nil)).Do(ctx).Error() == nil
		}, 30*time.Second, 500*time.Millisecond, "a tier change applies without a restart")
	})

	t.Run("webhook batches are admitted whole", func(t *testing.T) {
		bob, _ := tenantClient("kubeconfig-project-beta")
		batch := func(prefix string, n int) []byte {
			l := &corev1.EventList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "EventList"}}
			for i := range n {
				l.Items = append(l.Items, *newEvent(fmt.Sprintf("%s-%d", prefix, i), nil))
			}
			b, err := json.Marshal(l)
			require.NoError(t, err)
			return b
		}
		post := func(body []byte) error {
			return bob.CoreV1().RESTClient().Post().AbsPath("/ingest/v1/events").SetHeader("Content-Type", "application/json").
				MaxRetries(0).Body(body).Do(ctx).Error()
		}
		// More bytes than the whole quota: refused as a whole, nothing stored.
		err := post(batch("hook-big", 40))
		require.True(t, apierrors.IsForbidden(err), "want 403, got %v", err)
		require.Contains(t, err.Error(), "storage quota")
		_, err = bob.CoreV1().Events(ns).Get(ctx, "hook-big-0", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "nothing of a refused batch is stored: %v", err)
		// A small one fits.
		require.NoError(t, post(batch("hook-small", 2)))
		_, err = bob.CoreV1().Events(ns).Get(ctx, "hook-small-1", metav1.GetOptions{})
		require.NoError(t, err)
	})

	t.Run("storage quota", func(t *testing.T) {
		bob, _ := tenantClient("kubeconfig-project-beta")
		var refused error
		stored := 0
		for i := 0; i < 100 && refused == nil; i++ {
			_, err := bob.CoreV1().Events(ns).Create(ctx, newEvent(fmt.Sprintf("quota-%d", i), nil), metav1.CreateOptions{})
			if err != nil {
				refused = err
				break
			}
			stored++
		}
		require.Error(t, refused, "the quota of %d bytes must refuse a write", quotaBytes)
		require.True(t, apierrors.IsForbidden(refused), "want 403, got %v", refused)
		require.Contains(t, refused.Error(), "storage quota")
		require.Positive(t, stored, "writes below the quota were accepted")
		_, err := bob.CoreV1().Events(ns).Get(ctx, fmt.Sprintf("quota-%d", stored), metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "the refused write stored nothing: %v", err)
	})

	t.Run("usage is visible to the tenant", func(t *testing.T) {
		bob, _ := tenantClient("kubeconfig-project-beta")
		dc := dynamicFor(t, bob)
		l, err := dc.Resource(tenantUsages).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		require.Len(t, l.Items, 1, "a tenant sees its own usage only")
		u := l.Items[0]
		require.Equal(t, "project.beta", u.GetName())
		tier, _, _ := unstructured.NestedString(u.Object, "status", "tier")
		used, _, _ := unstructured.NestedInt64(u.Object, "status", "storageUsedBytes")
		limit, _, _ := unstructured.NestedInt64(u.Object, "status", "storageQuotaBytes")
		require.Equal(t, "Tight", tier)
		require.EqualValues(t, quotaBytes, limit)
		require.Positive(t, used)
		require.LessOrEqual(t, used, limit, "refusals kept usage within the quota")
		_, err = dc.Resource(tenantUsages).Get(ctx, "project.alpha", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "another tenant's usage: %v", err)

		admin, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
		require.NoError(t, err)
		adc, err := dynamic.NewForConfig(admin)
		require.NoError(t, err)
		all, err := adc.Resource(tenantUsages).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		var names []string
		for _, it := range all.Items {
			names = append(names, it.GetName())
		}
		require.Equal(t, []string{"project.alpha", "project.beta"}, names, "the platform sees every tenant")
	})
}
