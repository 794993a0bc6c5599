package generator

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// provider is the flavour of a simulated cluster. It decides what node names,
// storage provisioners, control-plane host names and registries look like, so
// that tenants are told apart at a glance, as real clusters are.
type provider int

const (
	providerKubeadm provider = iota
	providerEKS
	providerGKE
	providerAKS
	numProviders
)

// Workload kinds.
const (
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
	kindDaemonSet   = "DaemonSet"
	kindCronJob     = "CronJob"
)

// object is what an event's involvedObject points at.
type object struct {
	kind       string
	apiVersion string
	namespace  string
	name       string
	uid        string
}

type node struct {
	obj   object
	ready bool
	// images holds the images already pulled on the node, so a second pod
	// of the same version reports "already present" as the kubelet does. It
	// is bounded by maxNodeImages.
	images []string
}

const maxNodeImages = 24

func (n *node) hasImage(img string) bool {
	for _, i := range n.images {
		if i == img {
			return true
		}
	}
	return false
}

func (n *node) addImage(img string) {
	if n.hasImage(img) {
		return
	}
	if len(n.images) >= maxNodeImages {
		n.images = n.images[1:]
	}
	n.images = append(n.images, img)
}

type pod struct {
	obj  object
	node *node
	ip   string
	// owner is the ReplicaSet, Job, StatefulSet or DaemonSet that made the pod.
	owner *object
	gone  bool
	// The kubelet's last Pulled, Created and Started events of the main
	// container: a restart updates them (count+1) rather than making new ones,
	// as the kubelet's event correlator does.
	pulled, created, started *liveEvent
}

// app is one entry of the workload catalogue.
type app struct {
	name      string
	kind      string
	image     string // "{reg}" is replaced by the tenant's registry
	version   string // first version tag of an in-house image; empty for third-party images
	container string
	init      string // init container name, or empty
	initImage string
	port      int
	probe     string // readiness/liveness path
	configMap string // a configmap volume the pod mounts
	secret    string // a secret volume the pod mounts
	minRep    int
	maxRep    int
	hpa       bool
	lb        bool
	pvc       string // volumeClaimTemplate name of a StatefulSet
	every     int64  // CronJob schedule period in minutes
}

var catalogue = []app{
	{name: "web", kind: kindDeployment, image: "nginx:1.27.3", container: "nginx", port: 80, probe: "/", configMap: "nginx-conf", minRep: 2, maxRep: 6, hpa: true, lb: true},
	{name: "api", kind: kindDeployment, image: "{reg}/api", version: "v2.14.3", container: "app", init: "wait-for-db", initImage: "busybox:1.36.1", port: 8080, probe: "/healthz", configMap: "app-config", secret: "api-tls", minRep: 2, maxRep: 8, hpa: true},
	{name: "worker", kind: kindDeployment, image: "{reg}/worker", version: "v2.14.3", container: "worker", port: 9090, probe: "/healthz", configMap: "app-config", minRep: 1, maxRep: 6, hpa: true},
	{name: "frontend", kind: kindDeployment, image: "{reg}/frontend", version: "1.9.0", container: "frontend", port: 3000, probe: "/ready", configMap: "frontend-env", minRep: 2, maxRep: 5, lb: true},
	{name: "checkout", kind: kindDeployment, image: "{reg}/checkout-service", version: "3.2.1", container: "app", port: 8080, probe: "/healthz", configMap: "checkout-config", secret: "stripe-credentials", minRep: 2, maxRep: 6, hpa: true},
	{name: "gateway", kind: kindDeployment, image: "envoyproxy/envoy:v1.31.2", container: "envoy", port: 8443, probe: "/ready", configMap: "envoy-config", minRep: 2, maxRep: 4, lb: true},
	{name: "notifications", kind: kindDeployment, image: "{reg}/notifications", version: "0.18.2", container: "app", port: 8080, probe: "/healthz", secret: "smtp-credentials", minRep: 1, maxRep: 3},
	{name: "postgres", kind: kindStatefulSet, image: "postgres:16.4", container: "postgres", port: 5432, secret: "postgres-credentials", minRep: 1, maxRep: 3, pvc: "data"},
	{name: "redis", kind: kindStatefulSet, image: "redis:7.4.1-alpine", container: "redis", port: 6379, minRep: 1, maxRep: 3, pvc: "data"},
	{name: "kafka", kind: kindStatefulSet, image: "bitnami/kafka:3.8.0", container: "kafka", port: 9092, configMap: "kafka-scripts", minRep: 3, maxRep: 5, pvc: "data"},
	{name: "fluent-bit", kind: kindDaemonSet, image: "cr.fluentbit.io/fluent/fluent-bit:3.1.9", container: "fluent-bit", port: 2020, probe: "/api/v1/health", configMap: "fluent-bit-config"},
	{name: "node-exporter", kind: kindDaemonSet, image: "quay.io/prometheus/node-exporter:v1.8.2", container: "node-exporter", port: 9100, probe: "/"},
	{name: "backup", kind: kindCronJob, image: "{reg}/backup", version: "1.4.2", container: "backup", secret: "backup-s3-credentials", every: 60},
	{name: "report-generator", kind: kindCronJob, image: "{reg}/reports", version: "2.0.7", container: "reports", configMap: "report-config", every: 15},
	{name: "cache-warmer", kind: kindCronJob, image: "curlimages/curl:8.10.1", container: "curl", every: 5},
}

// namespaceNames are the namespace names tenants draw from.
var namespaceNames = []string{
	"prod", "staging", "payments", "web", "demo-namespace", "checkout", "data",
	"monitoring", "search", "auth", "orders", "billing", "analytics", "ml-serving",
	"backend", "frontend", "ingress", "dev", "qa", "inventory", "notifications",
	"reports", "media", "platform",
}

const maxNamespaces = 64

type workload struct {
	app   *app
	obj   object
	image string // current image reference
	patch int    // patch releases made so far, for in-house images
	// replicas is the desired count; pods are the live pods, never more
	// than maxRep+1 (or one per node for a DaemonSet).
	replicas int
	rs       *object // current ReplicaSet of a Deployment
	pods     []*pod
	hpa      *object
	svc      *object
	pvs      []string // volumes of a StatefulSet's claims, by ordinal
	jobs     []string // recent Jobs of a CronJob, oldest first, at most jobHistory+1
	lastRun  int64    // scheduled minute of the CronJob's last Job
}

const jobHistory = 3

type namespace struct {
	name      string
	workloads []*workload
}

type tenant struct {
	sc         scope.Scope
	slug       string
	provider   provider
	weight     float64
	nodes      []*node
	namespaces []*namespace
	// rv is the cluster's etcd revision, stamped on involvedObject refs.
	rv uint64
	// Reporters that differ per cluster.
	scheduler, kubeProxy, provisioner, lbController reporter
	provisionerName                                 string
	registry                                        string
	podCIDR                                         [2]int
	imageSizes                                      map[string]int64
}

// tenantSlug makes a DNS-label-like fragment of a tenant name for node and
// registry names.
func tenantSlug(sc scope.Scope) string {
	name := sc.Name
	if name == "" {
		name = "platform"
	}
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() >= 20 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		s = "cluster"
	}
	return s
}

// newTenant builds one simulated cluster. usedNodes holds the node names of
// the tenants built before, so that every tenant has its own.
func (g *Generator) newTenant(sc scope.Scope, namespaces int, usedNodes map[string]bool) *tenant {
	r := g.rng
	tn := &tenant{
		sc:         sc,
		slug:       tenantSlug(sc),
		provider:   provider(r.IntN(int(numProviders))),
		weight:     0.5 + 1.5*r.Float64(),
		rv:         uint64(1_000_000 + r.IntN(60_000_000)),
		imageSizes: map[string]int64{},
	}
	g.setupProvider(tn)

	nodes := 3 + r.IntN(4)
	for i := 0; i < nodes; i++ {
		name := g.nodeName(tn, i, usedNodes)
		usedNodes[name] = true
		tn.nodes = append(tn.nodes, &node{
			obj:   object{kind: "Node", apiVersion: "v1", name: name, uid: g.uuid()},
			ready: true,
		})
	}

	names := append([]string(nil), namespaceNames...)
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for i := 0; i < namespaces; i++ {
		name := fmt.Sprintf("team-%d", i+1)
		if i < len(names) {
			name = names[i]
		}
		tn.namespaces = append(tn.namespaces, g.newNamespace(tn, name))
	}
	return tn
}

func (g *Generator) setupProvider(tn *tenant) {
	r := g.rng
	var cpHost string
	switch tn.provider {
	case providerEKS:
		cpHost = fmt.Sprintf("ip-172-16-%d-%d.ec2.internal", r.IntN(256), 1+r.IntN(254))
		tn.provisionerName = "ebs.csi.aws.com"
		tn.registry = fmt.Sprintf("%012d.dkr.ecr.us-east-1.amazonaws.com/%s", 100000000000+r.Int64N(899999999999), tn.slug)
		tn.podCIDR = [2]int{10, 0}
		tn.provisioner = g.csiReporter(tn, "ebs-csi-controller")
		tn.lbController = reporter{component: "service-controller", manager: "aws-cloud-controller-manager"}
	case providerGKE:
		cpHost = fmt.Sprintf("gke-%s-%s-vm", g.hex(16), g.hex(4))
		tn.provisionerName = "pd.csi.storage.gke.io"
		tn.registry = fmt.Sprintf("us-docker.pkg.dev/%s-prod/apps", tn.slug)
		tn.podCIDR = [2]int{10, 8 + r.IntN(8)}
		tn.provisioner = g.csiReporter(tn, "csi-gce-pd-controller")
		tn.lbController = reporter{component: "service-controller", manager: "cloud-controller-manager"}
	case providerAKS:
		cpHost = fmt.Sprintf("kube-scheduler-%s-%s", g.podHash(), g.suffix())
		tn.provisionerName = "disk.csi.azure.com"
		tn.registry = fmt.Sprintf("%sregistry.azurecr.io", strings.ReplaceAll(tn.slug, "-", ""))
		tn.podCIDR = [2]int{10, 244}
		tn.provisioner = g.csiReporter(tn, "csi-azuredisk-controller")
		tn.lbController = reporter{component: "service-controller", manager: "cloud-controller-manager"}
	default:
		cpHost = tn.slug + "-control-plane"
		tn.provisionerName = "rancher.io/local-path"
		tn.registry = "ghcr.io/" + tn.slug
		tn.podCIDR = [2]int{10, 244}
		tn.provisioner = g.csiReporter(tn, "local-path-provisioner")
		tn.lbController = reporter{component: "metallb-controller", manager: "controller"}
	}
	// client-go's events recorder names its instance "<controller>-<hostname>".
	tn.scheduler = reporter{component: "default-scheduler", instance: "default-scheduler-" + cpHost, manager: "kube-scheduler", modern: true}
	tn.kubeProxy = reporter{component: "kube-proxy", manager: "kube-proxy", modern: true}
}

// csiReporter is the external-provisioner sidecar, whose event source is
// "<provisioner>_<pod>_<uuid>".
func (g *Generator) csiReporter(tn *tenant, deploy string) reporter {
	pod := fmt.Sprintf("%s-%s-%s", deploy, g.podHash(), g.suffix())
	return reporter{component: fmt.Sprintf("%s_%s_%s", tn.provisionerName, pod, g.uuid()), manager: "csi-provisioner"}
}

func (g *Generator) nodeName(tn *tenant, i int, used map[string]bool) string {
	r := g.rng
	for attempt := 0; ; attempt++ {
		var name string
		switch tn.provider {
		case providerEKS:
			name = fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", r.IntN(256), 1+r.IntN(254))
		case providerGKE:
			name = fmt.Sprintf("gke-%s-default-pool-%s-%s", tn.slug, g.hex(8), g.lowerAlnum(4))
		case providerAKS:
			name = fmt.Sprintf("aks-nodepool1-%08d-vmss%06d", 10000000+r.IntN(89999999), i)
		default:
			// The first kubeadm cluster gets the textbook names; later ones are
			// prefixed so that no two tenants share a node name.
			name = fmt.Sprintf("worker-%d", i+1)
			if attempt > 0 || used[name] {
				name = fmt.Sprintf("%s-worker-%d", tn.slug, i+1)
			}
			if attempt > 1 {
				name = fmt.Sprintf("%s-worker-%d-%s", tn.slug, i+1, g.lowerAlnum(4))
			}
		}
		if !used[name] {
			return name
		}
	}
}

func (g *Generator) newNamespace(tn *tenant, name string) *namespace {
	r := g.rng
	ns := &namespace{name: name}
	// Every namespace has at least one Deployment, so a rollout is always
	// possible; the rest is drawn from the catalogue.
	deployments := []int{}
	for i := range catalogue {
		if catalogue[i].kind == kindDeployment {
			deployments = append(deployments, i)
		}
	}
	chosen := map[int]bool{deployments[r.IntN(len(deployments))]: true}
	want := 3 + r.IntN(3)
	for len(chosen) < want {
		chosen[r.IntN(len(catalogue))] = true
	}
	for i := range catalogue {
		if chosen[i] {
			ns.workloads = append(ns.workloads, g.newWorkload(tn, ns, &catalogue[i]))
		}
	}
	return ns
}

func (g *Generator) newWorkload(tn *tenant, ns *namespace, a *app) *workload {
	r := g.rng
	w := &workload{app: a}
	apiVersion := "apps/v1"
	if a.kind == kindCronJob {
		apiVersion = "batch/v1"
	}
	w.obj = object{kind: a.kind, apiVersion: apiVersion, namespace: ns.name, name: a.name, uid: g.uuid()}
	w.image = strings.ReplaceAll(a.image, "{reg}", tn.registry)
	if a.version != "" {
		w.patch = r.IntN(4)
		w.image += ":" + bumpVersion(a.version, w.patch)
	}
	if a.hpa && r.IntN(3) > 0 {
		w.hpa = &object{kind: "HorizontalPodAutoscaler", apiVersion: "autoscaling/v2", namespace: ns.name, name: a.name, uid: g.uuid()}
	}
	if a.lb {
		w.svc = &object{kind: "Service", apiVersion: "v1", namespace: ns.name, name: a.name, uid: g.uuid()}
	}
	// The pods that were running before the simulation started. They have no
	// events yet; their story begins with the first thing that happens to them.
	switch a.kind {
	case kindDeployment:
		w.replicas = a.minRep + r.IntN(a.maxRep-a.minRep+1)
		w.rs = g.newReplicaSet(w)
		for i := 0; i < w.replicas; i++ {
			w.pods = append(w.pods, g.newPod(tn, w, w.rs, w.rs.name+"-"+g.suffix(), nil))
		}
	case kindStatefulSet:
		w.replicas = a.minRep + r.IntN(a.maxRep-a.minRep+1)
		for i := 0; i < w.replicas; i++ {
			w.pvs = append(w.pvs, "pvc-"+g.uuid())
			w.pods = append(w.pods, g.newPod(tn, w, &w.obj, fmt.Sprintf("%s-%d", a.name, i), nil))
		}
	case kindDaemonSet:
		w.replicas = len(tn.nodes)
		for _, n := range tn.nodes {
			w.pods = append(w.pods, g.newPod(tn, w, &w.obj, a.name+"-"+g.suffix(), n))
		}
	}
	for _, p := range w.pods {
		p.node.addImage(w.image)
	}
	return w
}

func (g *Generator) newReplicaSet(w *workload) *object {
	return &object{kind: "ReplicaSet", apiVersion: "apps/v1", namespace: w.obj.namespace,
		name: w.obj.name + "-" + g.podHash(), uid: g.uuid()}
}

// newPod makes a pod of w owned by owner. on pins it to a node (DaemonSets);
// otherwise the scheduler's choice is a ready node at random.
func (g *Generator) newPod(tn *tenant, w *workload, owner *object, name string, on *node) *pod {
	if on == nil {
		on = g.readyNode(tn)
	}
	return &pod{
		obj:   object{kind: "Pod", apiVersion: "v1", namespace: w.obj.namespace, name: name, uid: g.uuid()},
		node:  on,
		ip:    fmt.Sprintf("%d.%d.%d.%d", tn.podCIDR[0], tn.podCIDR[1], g.rng.IntN(256), 2+g.rng.IntN(250)),
		owner: owner,
	}
}

func (g *Generator) readyNode(tn *tenant) *node {
	start := g.rng.IntN(len(tn.nodes))
	for i := range tn.nodes {
		if n := tn.nodes[(start+i)%len(tn.nodes)]; n.ready {
			return n
		}
	}
	return tn.nodes[start]
}

// bumpVersion adds n to the last numeric component of a version tag,
// keeping any suffix: "7.4.1-alpine" becomes "7.4.2-alpine".
func bumpVersion(v string, n int) string {
	i := strings.LastIndexByte(v, '.')
	rest := v[i+1:]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 {
		return v
	}
	last, err := strconv.Atoi(rest[:j])
	if err != nil {
		return v
	}
	return v[:i+1] + strconv.Itoa(last+n) + rest[j:]
}

// imageSize is the stable size of an image in one cluster.
func (g *Generator) imageSize(tn *tenant, img string) int64 {
	if s, ok := tn.imageSizes[img]; ok {
		return s
	}
	var s int64
	switch {
	case strings.Contains(img, "nginx"):
		s = 71_000_000 + g.rng.Int64N(2_000_000)
	case strings.Contains(img, "alpine"), strings.Contains(img, "busybox"), strings.Contains(img, "curl"):
		s = 2_000_000 + g.rng.Int64N(16_000_000)
	case strings.Contains(img, "postgres"), strings.Contains(img, "kafka"):
		s = 150_000_000 + g.rng.Int64N(250_000_000)
	default:
		s = 25_000_000 + g.rng.Int64N(300_000_000)
	}
	// Images are few per cluster, but versions accumulate with rollouts: keep
	// the map bounded by forgetting everything once in a while.
	if len(tn.imageSizes) > 256 {
		clear(tn.imageSizes)
	}
	tn.imageSizes[img] = s
	return s
}

// Random name parts, all drawn from the generator's seeded source.

// alphanums is the alphabet of Kubernetes' generated name suffixes
// (k8s.io/apimachinery/pkg/util/rand): no vowels, no confusable digits.
const alphanums = "bcdfghjklmnpqrstvwxz2456789"

// suffix is a 5-character generateName suffix, as on pods of ReplicaSets.
func (g *Generator) suffix() string {
	var b [5]byte
	for i := range b {
		b[i] = alphanums[g.rng.IntN(len(alphanums))]
	}
	return string(b[:])
}

// podHash is a pod-template-hash: the controller hashes the template to a
// uint32 and passes its decimal digits through rand.SafeEncodeString, so only
// the ten characters that digits map to ever appear ("7d9f8b6c4").
func (g *Generator) podHash() string {
	digits := fmt.Sprint(g.rng.Uint32())
	b := make([]byte, len(digits))
	for i := 0; i < len(digits); i++ {
		b[i] = alphanums[int(digits[i])%len(alphanums)]
	}
	return string(b)
}

func (g *Generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *Generator) lowerAlnum(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[g.rng.IntN(len(chars))]
	}
	return string(b)
}

// uuid is a random (version 4) UUID from the seeded source, so that uids are
// deterministic too.
func (g *Generator) uuid() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := g.rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// between returns a uniform int in [lo, hi].
func between(r *rand.Rand, lo, hi int) int {
	return lo + r.IntN(hi-lo+1)
}
