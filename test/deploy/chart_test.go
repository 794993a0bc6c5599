// Package deploy tests the Helm chart (deploy/helm/eventpipe) against the
// real peers: helm built from its Go module renders it, and a real
// kube-apiserver 1.37 with cert-manager's and prometheus-operator's CRDs
// (from their Go modules) accepts every object in a server-side dry run.
// The chart's own APIService, RBAC, certificate and kubeconfig then
// aggregate a running eventpipe into that kube-apiserver, and a tenant
// queries history through it.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/test/internal/aggregated"
)

const (
	chart     = "deploy/helm/eventpipe"
	namespace = "eventpipe"
	release   = "eventpipe"
)

// render runs helm template for the release in its namespace with args
// (values files, --set) and returns the manifest.
func render(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return kubetest.RunHelm(ctx, t, append([]string{"template", release, chart, "--namespace", namespace}, args...)...)
}

// objects decodes a multi-document manifest.
func objects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	d := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var o map[string]any
		err := d.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if len(o) > 0 {
			out = append(out, &unstructured.Unstructured{Object: o})
		}
	}
}

// kinds lists "Kind/name" of objs, sorted.
func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the rendered chart; it has %v", kind, name, kinds(objs))
	return nil
}

// writeManifest writes objs as one multi-document YAML file.
func writeManifest(t *testing.T, objs ...*unstructured.Unstructured) string {
	t.Helper()
	var b bytes.Buffer
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object)
		require.NoError(t, err)
		b.WriteString("---\n")
		b.Write(y)
	}
	path := filepath.Join(t.TempDir(), "manifest.yaml")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	return path
}

// dryRun applies a manifest file to the cluster server-side with
// --dry-run=server: the API server validates every object (schemas,
// CRDs, admission) and stores none.
func dryRun(t *testing.T, c *kubetest.Cluster, path string) (string, error) {
	t.Helper()
	out, errOut, err := kubetest.Kubectl(t, c.Kubeconfig, "apply", "--server-side", "--dry-run=server",
		"--field-manager=helm", "-f", path)
	if err != nil {
		return out + errOut, fmt.Errorf("%w: %s", err, errOut)
	}
	return out, nil
}

// installCRDs applies the operators' CRDs and waits until they are served.
func installCRDs(t *testing.T, c *kubetest.Cluster) {
	t.Helper()
	_, crds := kubetest.Helm(t)
	for _, d := range []string{"cert-manager", "prometheus-operator"} {
		_, errOut, err := kubetest.Kubectl(t, c.Kubeconfig, "apply", "--server-side", "-f", filepath.Join(crds, d))
		require.NoError(t, err, errOut)
	}
	_, errOut, err := kubetest.Kubectl(t, c.Kubeconfig, "wait", "--for=condition=Established", "--timeout=90s", "crd", "--all")
	require.NoError(t, err, errOut)
}

// Each documented configuration renders, and the real kube-apiserver
// accepts every object of it.
func testRenderAndApply(t *testing.T, c *kubetest.Cluster) {
	ca, err := kubetest.NewCA("etcd-ca")
	require.NoError(t, err)
	etcdCA := filepath.Join(t.TempDir(), "etcd-ca.crt")
	require.NoError(t, os.WriteFile(etcdCA, ca.PEM(), 0o600))

	cases := []struct {
		name string
		args []string
		// want are objects the configuration must contain.
		want []string
	}{
		{"default values", nil, []string{
			"APIService/v1alpha1.activity.miloapis.com", "Deployment/eventpipe-apiserver", "Deployment/eventpipe-writer",
			"Deployment/eventpipe-activity-processor", "PodDisruptionBudget/eventpipe-apiserver", "Job/eventpipe-migrate",
			"ClusterRoleBinding/eventpipe:system:auth-delegator", "RoleBinding/eventpipe:extension-apiserver-authentication-reader",
			"ClusterRole/eventpipe:view", "ClusterRole/eventpipe:edit", "ClusterRole/eventpipe:audit-reader", "Secret/eventpipe-apiserver-tls",
		}},
		{"examples/standalone.yaml", []string{"-f", chart + "/examples/standalone.yaml"}, []string{
			"Deployment/eventpipe-apiserver", "ConfigMap/eventpipe-tiers",
		}},
		{"examples/etcd-front.yaml", []string{"-f", chart + "/examples/etcd-front.yaml", "--set-file", "etcdFront.tls.clientCA=" + etcdCA}, []string{
			"Deployment/eventpipe-etcd", "Service/eventpipe-etcd", "Secret/eventpipe-etcd-tls", "ConfigMap/eventpipe-etcd-client-ca",
			"PodDisruptionBudget/eventpipe-etcd",
		}},
		{"examples/exporter.yaml", []string{"-f", chart + "/examples/exporter.yaml"}, []string{
			"Deployment/eventpipe-exporter", "ClusterRole/eventpipe:exporter", "Role/eventpipe:exporter-lease",
		}},
		{"examples/production.yaml with the etcd front", []string{"-f", chart + "/examples/production.yaml",
			"--set", "etcdFront.enabled=true", "--set-file", "etcdFront.tls.clientCA=" + etcdCA}, []string{
			"Certificate/eventpipe-apiserver", "Issuer/eventpipe-ca", "Certificate/eventpipe-etcd-tls",
			"ServiceMonitor/eventpipe-apiserver", "ServiceMonitor/eventpipe-writer", "ServiceMonitor/eventpipe-etcd",
			"PrometheusRule/eventpipe", "ConfigMap/eventpipe-dashboard",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			manifest, err := render(t, tc.args...)
			require.NoError(t, err)
			objs := objects(t, manifest)
			got := kinds(objs)
			for _, w := range tc.want {
				require.Contains(t, got, w)
			}
			checkHardened(t, objs)
			checkMonitoring(t, objs)
			out, err := dryRun(t, c, writeManifest(t, objs...))
			require.NoError(t, err, "kube-apiserver refused the chart's objects")
			t.Logf("%d objects accepted:\n%s", len(objs), out)
		})
	}

	t.Run("examples/upstream/clickhouse.yaml", func(t *testing.T) {
		root, err := kubetest.RepoRoot()
		require.NoError(t, err)
		_, err = dryRun(t, c, filepath.Join(root, chart, "examples/upstream/clickhouse.yaml"))
		require.NoError(t, err)
		data, err := os.ReadFile(filepath.Join(root, chart, "examples/upstream/nats-values.yaml"))
		require.NoError(t, err)
		var v map[string]any
		require.NoError(t, yaml.UnmarshalStrict(data, &v), "the NATS chart's values example is YAML")
	})

	// The dry run is what catches a manifest a values change broke: a
	// value the schema lets through but Kubernetes does not accept fails
	// here, naming the field.
	t.Run("a broken manifest is refused", func(t *testing.T) {
		manifest, err := render(t, "--set", "podSecurityContext.runAsUser=nobody")
		require.NoError(t, err)
		out, err := dryRun(t, c, writeManifest(t, objects(t, manifest)...))
		require.Error(t, err, out)
		require.Contains(t, err.Error(), "runAsUser")
	})
}

// checkMonitoring checks that the PrometheusRule carries every alert of
// files/prometheus-rules.yaml (the file promtool tests) and the dashboard
// ConfigMap the dashboard JSON, when the configuration has them.
func checkMonitoring(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	root, err := kubetest.RepoRoot()
	require.NoError(t, err)
	for _, o := range objs {
		switch {
		case o.GetKind() == "PrometheusRule":
			data, err := os.ReadFile(filepath.Join(root, chart, "files/prometheus-rules.yaml"))
			require.NoError(t, err)
			var file map[string]any
			require.NoError(t, yaml.Unmarshal(data, &file))
			spec, _, _ := unstructured.NestedMap(o.Object, "spec")
			require.Equal(t, file, spec, "the PrometheusRule is the rules file")
			groups, _, _ := unstructured.NestedSlice(spec, "groups")
			require.NotEmpty(t, groups)
		case o.GetKind() == "ConfigMap" && o.GetName() == "eventpipe-dashboard":
			dash, _, _ := unstructured.NestedString(o.Object, "data", "eventpipe.json")
			var d map[string]any
			require.NoError(t, json.Unmarshal([]byte(dash), &d), "the dashboard is JSON")
			require.NotEmpty(t, d["panels"])
		}
	}
}

// checkHardened checks what the issue asks of every pod: non-root, no
// privilege escalation, a read-only root filesystem, no capabilities, the
// runtime's default seccomp profile, and a memory limit with Go's limit
// below it.
func checkHardened(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		var podPath []string
		switch o.GetKind() {
		case "Deployment", "Job":
			podPath = []string{"spec", "template", "spec"}
		default:
			continue
		}
		pod, ok, err := unstructured.NestedMap(o.Object, podPath...)
		require.NoError(t, err)
		require.True(t, ok)
		what := o.GetKind() + "/" + o.GetName()
		nonRoot, _, _ := unstructured.NestedBool(pod, "securityContext", "runAsNonRoot")
		require.True(t, nonRoot, "%s: runAsNonRoot", what)
		seccomp, _, _ := unstructured.NestedString(pod, "securityContext", "seccompProfile", "type")
		require.Equal(t, "RuntimeDefault", seccomp, what)
		containers, _, _ := unstructured.NestedSlice(pod, "containers")
		require.NotEmpty(t, containers, what)
		for _, ci := range containers {
			cm := ci.(map[string]any)
			ro, _, _ := unstructured.NestedBool(cm, "securityContext", "readOnlyRootFilesystem")
			require.True(t, ro, "%s: readOnlyRootFilesystem", what)
			esc, found, _ := unstructured.NestedBool(cm, "securityContext", "allowPrivilegeEscalation")
			require.True(t, found && !esc, "%s: allowPrivilegeEscalation false", what)
			drop, _, _ := unstructured.NestedStringSlice(cm, "securityContext", "capabilities", "drop")
			require.Equal(t, []string{"ALL"}, drop, what)
			mem, _, _ := unstructured.NestedString(cm, "resources", "limits", "memory")
			require.NotEmpty(t, mem, "%s: memory limit", what)
			args, _, _ := unstructured.NestedStringSlice(cm, "args")
			if o.GetKind() == "Deployment" {
				require.True(t, slices.ContainsFunc(args, func(a string) bool {
					return strings.HasPrefix(a, "--runtime.memory-limit=") && strings.HasSuffix(a, "Mi")
				}), "%s: --runtime.memory-limit from the memory limit %s: %v", what, mem, args)
			}
		}
	}
}

// testUpgradeKeepsSecrets installs the chart for real and upgrades it: the
// certificates and the cursor key the chart generated must survive the
// upgrade (read back with lookup), or every upgrade would break the
// APIService's trust, kube-apiserver's trust in the etcd front and every
// EventQuery continue token in flight. Hooks are left out: the migration
// Job would never finish on a cluster without nodes. The APIService is
// left out too; the aggregation test owns the one of that name.
func testUpgradeKeepsSecrets(t *testing.T, c *kubetest.Cluster) {
	ca, err := kubetest.NewCA("etcd-ca")
	require.NoError(t, err)
	etcdCA := filepath.Join(t.TempDir(), "etcd-ca.crt")
	require.NoError(t, os.WriteFile(etcdCA, ca.PEM(), 0o600))
	const ns = "upgrade"
	helm := func(verb string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := kubetest.RunHelm(ctx, t, verb, "ep", chart, "--kubeconfig", c.Kubeconfig, "--namespace", ns,
			"--create-namespace", "--no-hooks", "--set", "aggregation.enabled=false", "--set", "etcdFront.enabled=true",
			"--set-file", "etcdFront.tls.clientCA="+etcdCA)
		require.NoError(t, err, out)
	}
	secrets := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, name := range []string{"ep-eventpipe-apiserver-tls", "ep-eventpipe-etcd-tls", "ep-eventpipe-cursor-key"} {
			data, errOut, err := kubetest.Kubectl(t, c.Kubeconfig, "get", "secret", "-n", ns, name, "-o", "jsonpath={.data}")
			require.NoError(t, err, errOut)
			require.NotEmpty(t, data, name)
			out[name] = data
		}
		return out
	}
	helm("install")
	before := secrets()
	helm("upgrade")
	require.Equal(t, before, secrets(), "helm upgrade generated new certificates or a new cursor key")
}

// Invalid values fail helm template with the value's path, not a broken
// manifest (values.schema.json).
func testBadValues(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"writer replicas 0", []string{"--set", "writer.replicas=0"}, []string{"/writer/replicas", "minimum"}},
		{"six writers", []string{"--set", "writer.replicas=6"}, []string{"/writer/replicas", "maximum"}},
		{"a bad writer lease TTL", []string{"--set", "writer.leaseTTL=ten"}, []string{"/writer/leaseTTL"}},
		{"no NATS URL", []string{"--set", "nats.url="}, []string{"/nats/url"}},
		{"NATS URL without a scheme", []string{"--set", "nats.url=nats.svc:4222"}, []string{"/nats/url", "pattern"}},
		{"no ClickHouse address", []string{"--set", "clickhouse.addr="}, []string{"/clickhouse/addr"}},
		{"cert-manager and a manual secret", []string{"--set", "tls.certManager.enabled=true", "--set", "tls.existingSecret=mine", "--set", "tls.caBundle=Zm9v"},
			[]string{"/tls/existingSecret", "maxLength"}},
		{"a manual secret without its CA", []string{"--set", "tls.existingSecret=mine"}, []string{"/tls/caBundle"}},
		{"etcd front without the client CA", []string{"--set", "etcdFront.enabled=true"}, []string{"/etcdFront/tls/clientCA"}},
		{"exporter without a cluster name", []string{"--set", "exporter.enabled=true"}, []string{"/exporter/clusterName"}},
		{"a misspelt value", []string{"--set", "writer.replica=1"}, []string{"/writer", "replica"}},
		{"a bad duration", []string{"--set", "stream.retention=2 hours"}, []string{"/stream/retention"}},
		{"a stream replica count JetStream refuses", []string{"--set", "stream.replicas=2"}, []string{"/stream/replicas"}},
		{"an API server budget that blocks every drain", []string{"--set", "apiserver.replicas=3", "--set", "apiserver.pdb.minAvailable=3"},
			[]string{"apiserver.pdb.minAvailable (3) must be below apiserver.replicas (3)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render(t, tc.args...)
			require.Error(t, err, "rendered:\n%s", out)
			require.Empty(t, out, "nothing is rendered when the values are wrong")
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			t.Logf("%v", err)
		})
	}
}

// API server replicas share the rate limits (--tiers.replicas follows the
// replica count), spread over nodes, and keep a disruption budget only when
// there is a replica to spare: a budget over a single replica would block
// every node drain (docs/apiserver-replicas.md).
func testAPIServerReplicas(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		replicas int64
		pdb      any // nil: no PodDisruptionBudget
	}{
		{"default", nil, 2, int64(1)},
		{"one replica", []string{"--set", "apiserver.replicas=1"}, 1, nil},
		{"three replicas, a percentage", []string{"--set", "apiserver.replicas=3", "--set", "apiserver.pdb.minAvailable=50%"}, 3, "50%"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifest, err := render(t, tc.args...)
			require.NoError(t, err)
			objs := objects(t, manifest)
			d := find(t, objs, "Deployment", release+"-apiserver")
			n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas")
			require.EqualValues(t, tc.replicas, n)
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
			require.Contains(t, args, fmt.Sprintf("--tiers.replicas=%d", tc.replicas))
			_, spread, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "template", "spec", "affinity", "podAntiAffinity")
			require.True(t, spread, "replicas prefer different nodes")
			var pdb *unstructured.Unstructured
			for _, o := range objs {
				if o.GetKind() == "PodDisruptionBudget" && o.GetName() == release+"-apiserver" {
					pdb = o
				}
			}
			if tc.pdb == nil {
				require.Nil(t, pdb, "no budget over a single replica")
				return
			}
			require.NotNil(t, pdb)
			got, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "minAvailable")
			require.EqualValues(t, tc.pdb, got)
		})
	}
}

// Writer replicas beyond one stand by under the writer lease: the chart
// renders them with the lease's TTL, spread over nodes, and without the
// Recreate strategy (a new pod may start while the old one holds the
// lease: it stands by until the old one releases it).
func testWriterReplicas(t *testing.T) {
	out, err := render(t, "--set", "writer.replicas=2", "--set", "writer.leaseTTL=7s")
	require.NoError(t, err)
	d := find(t, objects(t, out), "Deployment", "eventpipe-writer")
	replicas, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas")
	require.EqualValues(t, "2", fmt.Sprint(replicas))
	strategy, _, _ := unstructured.NestedString(d.Object, "spec", "strategy", "type")
	require.NotEqual(t, "Recreate", strategy)
	_, hasAffinity, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec", "affinity", "podAntiAffinity")
	require.True(t, hasAffinity, "two writers are spread over nodes")
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	require.Len(t, containers, 1)
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	require.Contains(t, args, "--writer.lease-ttl=7s")
}

func TestChart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := kubetest.RunHelm(ctx, t, "lint", chart, "--namespace", namespace)
	require.NoError(t, err)

	t.Run("bad values", testBadValues)
	t.Run("API server replicas", testAPIServerReplicas)
	t.Run("writer replicas", testWriterReplicas)

	c := kubetest.StartCluster(t, kubetest.Options{ExtraArgs: kubetest.TenantWebhook(t, aggregated.TenantUsers)})
	installCRDs(t, c)
	_, errOut, err := kubetest.Kubectl(t, c.Kubeconfig, "create", "namespace", namespace)
	require.NoError(t, err, errOut)

	t.Run("render and apply", func(t *testing.T) { testRenderAndApply(t, c) })
	t.Run("upgrade keeps generated secrets", func(t *testing.T) { testUpgradeKeepsSecrets(t, c) })
	t.Run("aggregation with the chart's objects", func(t *testing.T) { testAggregation(t, c) })
}
