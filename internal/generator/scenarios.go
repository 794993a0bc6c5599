package generator

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// A step records one event state when its turn comes; ok is false when the
// step no longer applies (its pod is gone, say) and produced nothing.
type step func() (st state, ok bool)

// A chain is a story's remaining steps, in order. Chains of different
// stories interleave, as a real cluster's components run concurrently.
type chain []step

const (
	normal  = corev1.EventTypeNormal
	warning = corev1.EventTypeWarning
)

// activity starts a story in tn; it returns nil when tn has nothing it
// applies to.
type activity struct {
	weight float64
	start  func(g *Generator, tn *tenant) []step
}

// activities are the stories a cluster lives through, weighted by how often
// they happen relative to each other.
var activities = []activity{
	{3, (*Generator).rolloutDeployment},
	{5, (*Generator).autoscale},
	{7, (*Generator).runCronJob},
	{3, (*Generator).crashLoop},
	{4, (*Generator).readinessFailure},
	{2, (*Generator).livenessFailure},
	{2, (*Generator).statefulSetChange},
	{0.6, (*Generator).rolloutDaemonSet},
	{2, (*Generator).preemption},
	{0.8, (*Generator).nodeNotReady},
	{0.5, (*Generator).nodeReboot},
	{0.15, (*Generator).controllerManagerRestart},
	{0.7, (*Generator).ensureLoadBalancer},
	{0.8, (*Generator).metricsUnavailable},
}

var activityTotal = func() float64 {
	var t float64
	for _, a := range activities {
		t += a.weight
	}
	return t
}()

// say is a step that records s.
func (g *Generator) say(tn *tenant, s evSpec) step {
	return func() (state, bool) {
		st, _ := g.record(tn, s, nil, 0)
		return st, true
	}
}

// sayPod is a step that records s about p, unless p is gone by then; budget
// > 0 makes it repeat.
func (g *Generator) sayPod(tn *tenant, p *pod, s evSpec, budget int) step {
	return func() (state, bool) {
		if p.gone {
			return state{}, false
		}
		st, _ := g.record(tn, s, p, budget)
		return st, true
	}
}

// do runs f (a change to the simulated cluster) before the step.
func do(f func(), s step) step {
	return func() (state, bool) {
		f()
		return s()
	}
}

// spawn starts a parallel chain when the step runs, e.g. a pod's own story
// once its controller has created it.
func (g *Generator) spawn(s step, c func() []step) step {
	return func() (state, bool) {
		st, ok := s()
		if steps := c(); len(steps) > 0 {
			g.chains = append(g.chains, steps)
		}
		return st, ok
	}
}

func (g *Generator) workloads(tn *tenant, kind string) []*workload {
	var out []*workload
	for _, ns := range tn.namespaces {
		for _, w := range ns.workloads {
			if kind == "" || w.app.kind == kind {
				out = append(out, w)
			}
		}
	}
	return out
}

func (g *Generator) pickWorkload(tn *tenant, kind string, ok func(*workload) bool) *workload {
	var cands []*workload
	for _, w := range g.workloads(tn, kind) {
		if ok == nil || ok(w) {
			cands = append(cands, w)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[g.rng.IntN(len(cands))]
}

func containerPath(name string) string { return "spec.containers{" + name + "}" }

// failure is what goes wrong while a pod starts.
type failure int

const (
	failNone failure = iota
	failCrash
	failPull
	failMount
	failProbe
	failSchedule
)

func (g *Generator) pickFailure() failure {
	switch r := g.rng.Float64(); {
	case r < 0.07:
		return failCrash
	case r < 0.12:
		return failPull
	case r < 0.16:
		return failMount
	case r < 0.21:
		return failProbe
	case r < 0.29:
		return failSchedule
	}
	return failNone
}

// podStart is a pod's story from scheduling to running (or to where it
// gets stuck).
func (g *Generator) podStart(tn *tenant, w *workload, p *pod, f failure) []step {
	a := w.app
	ref := p.obj
	kl := kubelet(p.node)
	var steps []step
	if f == failSchedule {
		n := len(tn.nodes)
		return []step{g.sayPod(tn, p, evSpec{obj: ref, typ: warning, reason: "FailedScheduling", action: "Scheduling", by: tn.scheduler,
			message: g.unschedulable(n)}, between(g.rng, 3, 40))}
	}
	steps = append(steps, g.sayPod(tn, p, evSpec{obj: ref, typ: normal, reason: "Scheduled", action: "Binding", by: tn.scheduler,
		message: fmt.Sprintf("Successfully assigned %s/%s to %s", ref.namespace, ref.name, p.node.obj.name)}, 0))
	if f == failMount {
		vol, msg := "config", fmt.Sprintf("configmap %q not found", a.configMap)
		if a.configMap == "" || (a.secret != "" && g.rng.IntN(2) == 0) {
			vol, msg = "secrets", fmt.Sprintf("secret %q not found", firstNonEmpty(a.secret, a.name+"-secrets"))
		}
		return append(steps, g.sayPod(tn, p, evSpec{obj: ref, typ: warning, reason: "FailedMount", by: kl,
			message: fmt.Sprintf("MountVolume.SetUp failed for volume %q : %s", vol, msg)}, between(g.rng, 4, 60)))
	}
	if a.init != "" {
		c := evSpec{obj: ref, fieldPath: "spec.initContainers{" + a.init + "}", typ: normal, by: kl}
		steps = append(steps, g.pullSteps(tn, p, c, a.initImage, failNone)...)
		c.reason, c.message = "Created", "Created container: "+a.init
		steps = append(steps, g.sayPod(tn, p, c, 0))
		c.reason, c.message = "Started", "Started container "+a.init
		steps = append(steps, g.sayPod(tn, p, c, 0))
	}
	c := evSpec{obj: ref, fieldPath: containerPath(a.container), typ: normal, by: kl}
	pf := failNone
	if f == failPull {
		pf = failPull
	}
	steps = append(steps, g.pullSteps(tn, p, c, w.image, pf)...)
	if f == failPull {
		return steps
	}
	crash := 0
	if f == failCrash {
		// The container restarts a few times before the kubelet backs off.
		crash = between(g.rng, 2, 8)
	}
	c.reason, c.message = "Created", "Created container: "+a.container
	steps = append(steps, g.podSlot(tn, p, &p.created, c, crash))
	c.reason, c.message = "Started", "Started container "+a.container
	steps = append(steps, g.podSlot(tn, p, &p.started, c, crash))
	switch f {
	case failCrash:
		steps = append(steps, g.backOff(tn, w, p))
	case failProbe:
		steps = append(steps, g.sayPod(tn, p, g.readinessSpec(tn, w, p), between(g.rng, 3, 80)))
	}
	return steps
}

// podSlot is a step that records (or bumps) one of p's restart-counted events.
func (g *Generator) podSlot(tn *tenant, p *pod, slot **liveEvent, s evSpec, budget int) step {
	return func() (state, bool) {
		if p.gone {
			return state{}, false
		}
		return g.recordOrBump(tn, slot, s, p, budget), true
	}
}

// pullSteps are the kubelet's image events for one container.
func (g *Generator) pullSteps(tn *tenant, p *pod, c evSpec, img string, f failure) []step {
	if f != failPull && p.node.hasImage(img) {
		c.reason, c.message = "Pulled", fmt.Sprintf("Container image %q already present on machine", img)
		if strings.HasPrefix(c.fieldPath, "spec.containers{") {
			return []step{g.podSlot(tn, p, &p.pulled, c, 0)}
		}
		return []step{g.sayPod(tn, p, c, 0)}
	}
	pulling := c
	pulling.reason, pulling.message = "Pulling", fmt.Sprintf("Pulling image %q", img)
	steps := []step{g.sayPod(tn, p, pulling, 0)}
	if f == failPull {
		bad := img
		if i := strings.LastIndexByte(img, ':'); i > 0 {
			bad = img[:i+1] + bumpVersion(img[i+1:], 1+g.rng.IntN(3)) + "-rc1"
		}
		// The story of a typo'd tag: the pull fails, then the kubelet backs off
		// and keeps saying so.
		pulling.message = fmt.Sprintf("Pulling image %q", bad)
		steps[0] = g.sayPod(tn, p, pulling, between(g.rng, 2, 10))
		failed := c
		failed.typ, failed.reason = warning, "Failed"
		failed.message = fmt.Sprintf("Failed to pull image %q: rpc error: code = NotFound desc = failed to pull and unpack image %q: failed to resolve reference %q: %s: not found", bad, bad, bad, bad)
		steps = append(steps, g.sayPod(tn, p, failed, 0))
		failed.message = "Error: ErrImagePull"
		steps = append(steps, g.sayPod(tn, p, failed, between(g.rng, 2, 10)))
		backoff := c
		backoff.reason, backoff.message = "BackOff", fmt.Sprintf("Back-off pulling image %q", bad)
		steps = append(steps, g.sayPod(tn, p, backoff, between(g.rng, 5, 60)))
		failed.message = "Error: ImagePullBackOff"
		steps = append(steps, g.sayPod(tn, p, failed, between(g.rng, 5, 60)))
		return steps
	}
	size := g.imageSize(tn, img)
	// Pulls run at roughly 20-120 MB/s; waiting for the pull queue adds to
	// the total now and then.
	pull := time.Duration(float64(size)/float64(20_000_000+g.rng.IntN(100_000_000))*float64(time.Second)) + time.Duration(g.rng.IntN(400))*time.Millisecond
	total := pull
	if g.rng.IntN(4) == 0 {
		total += time.Duration(g.rng.IntN(5000)) * time.Millisecond
	}
	pulled := c
	pulled.reason = "Pulled"
	pulled.message = fmt.Sprintf("Successfully pulled image %q in %v (%v including waiting). Image size: %d bytes.",
		img, pull.Truncate(time.Millisecond), total.Truncate(time.Millisecond), size)
	main := strings.HasPrefix(c.fieldPath, "spec.containers{")
	steps = append(steps, func() (state, bool) {
		if p.gone {
			return state{}, false
		}
		p.node.addImage(img)
		if main {
			return g.recordOrBump(tn, &p.pulled, pulled, p, 0), true
		}
		st, _ := g.record(tn, pulled, p, 0)
		return st, true
	})
	return steps
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// unschedulable is the scheduler's FailedScheduling message for a cluster of
// n nodes.
func (g *Generator) unschedulable(n int) string {
	switch g.rng.IntN(4) {
	case 0:
		cpu := 1 + g.rng.IntN(n)
		if cpu == n {
			break
		}
		return fmt.Sprintf("0/%d nodes are available: %d Insufficient cpu, %d Insufficient memory. preemption: 0/%d nodes are available: %d No preemption victims found for incoming pod.",
			n, cpu, n-cpu, n, n)
	case 1:
		return fmt.Sprintf("0/%d nodes are available: %d node(s) didn't match Pod's node affinity/selector. preemption: 0/%d nodes are available: %d Preemption is not helpful for scheduling.",
			n, n, n, n)
	case 2:
		return fmt.Sprintf("0/%d nodes are available: %d Insufficient memory. preemption: 0/%d nodes are available: %d No preemption victims found for incoming pod.",
			n, n, n, n)
	}
	return fmt.Sprintf("0/%d nodes are available: %d Insufficient cpu. preemption: 0/%d nodes are available: %d No preemption victims found for incoming pod.",
		n, n, n, n)
}

func (g *Generator) backOff(tn *tenant, w *workload, p *pod) step {
	return g.sayPod(tn, p, evSpec{obj: p.obj, fieldPath: containerPath(w.app.container), typ: warning, reason: "BackOff", by: kubelet(p.node),
		message: fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", w.app.container, p.obj.name, p.obj.namespace, p.obj.uid)},
		between(g.rng, 5, 120))
}

func (g *Generator) readinessSpec(tn *tenant, w *workload, p *pod) evSpec {
	a := w.app
	path := firstNonEmpty(a.probe, "/healthz")
	var msg string
	switch g.rng.IntN(3) {
	case 0:
		msg = fmt.Sprintf("Readiness probe failed: Get \"http://%s:%d%s\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)", p.ip, a.port, path)
	case 1:
		msg = "Readiness probe failed: HTTP probe failed with statuscode: 503"
	default:
		msg = fmt.Sprintf("Readiness probe failed: Get \"http://%s:%d%s\": dial tcp %s:%d: connect: connection refused", p.ip, a.port, path, p.ip, a.port)
	}
	return evSpec{obj: p.obj, fieldPath: containerPath(a.container), typ: warning, reason: "Unhealthy", by: kubelet(p.node), message: msg}
}

// killing is a step in which the kubelet stops p's container; the pod is
// gone from then on.
func (g *Generator) killing(tn *tenant, w *workload, p *pod) step {
	s := evSpec{obj: p.obj, fieldPath: containerPath(w.app.container), typ: normal, reason: "Killing", by: kubelet(p.node),
		message: "Stopping container " + w.app.container}
	return func() (state, bool) {
		p.gone = true
		st, _ := g.record(tn, s, nil, 0)
		return st, true
	}
}

// nextImage is the image of w's next release: in-house images get a new
// patch version; third-party ones sometimes a new tag, otherwise the rollout
// is a configuration change.
func (g *Generator) nextImage(tn *tenant, w *workload) string {
	a := w.app
	if a.version != "" {
		w.patch++
		return strings.ReplaceAll(a.image, "{reg}", tn.registry) + ":" + bumpVersion(a.version, w.patch)
	}
	if i := strings.LastIndexByte(w.image, ':'); i > 0 && g.rng.IntN(3) == 0 && w.patch < 20 {
		w.patch++
		return w.image[:i+1] + bumpVersion(w.image[i+1:], 1)
	}
	return w.image
}

func (g *Generator) rolloutDeployment(tn *tenant) []step {
	w := g.pickWorkload(tn, kindDeployment, nil)
	if w == nil {
		return nil
	}
	dc := controller("deployment-controller")
	rsc := controller("replicaset-controller")
	old := w.pods
	stable := w.rs
	newRS := g.newReplicaSet(w)
	w.image = g.nextImage(tn, w)
	f := g.pickFailure()
	broken := f == failCrash || f == failPull || f == failMount || f == failSchedule

	// How many pods each old ReplicaSet has, for the "from" of scale-downs.
	counts := map[string]int{}
	for _, p := range old {
		counts[p.owner.name]++
	}
	var steps []step
	scaleDown := func(p *pod) {
		rs := p.owner
		from := counts[rs.name]
		counts[rs.name]--
		steps = append(steps,
			g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "ScalingReplicaSet", by: dc,
				message: fmt.Sprintf("Scaled down replica set %s to %d from %d", rs.name, from-1, from)}),
			g.spawn(do(func() { p.gone = true }, g.say(tn, evSpec{obj: *rs, typ: normal, reason: "SuccessfulDelete", by: rsc,
				message: "Deleted pod: " + p.obj.name})),
				func() []step { return []step{g.killing(tn, w, p)} }),
		)
	}
	scaleUp := func(i int, f failure) *pod {
		p := g.newPod(tn, w, newRS, newRS.name+"-"+g.suffix(), nil)
		steps = append(steps,
			g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "ScalingReplicaSet", by: dc,
				message: fmt.Sprintf("Scaled up replica set %s to %d from %d", newRS.name, i, i-1)}),
			g.spawn(g.say(tn, evSpec{obj: *newRS, typ: normal, reason: "SuccessfulCreate", by: rsc, message: "Created pod: " + p.obj.name}),
				func() []step { return g.podStart(tn, w, p, f) }),
		)
		return p
	}

	var keep, drop []*pod
	for _, p := range old {
		if p.owner == stable {
			keep = append(keep, p)
		} else {
			drop = append(drop, p)
		}
	}
	// A previous rollout that got stuck is superseded first.
	for _, p := range drop {
		scaleDown(p)
	}
	w.rs = newRS
	if broken {
		// The first new pod never becomes ready, so the rollout stalls with
		// the old pods still serving.
		w.pods = append(keep, scaleUp(1, f))
		w.rs = stable
		return steps
	}
	var pods []*pod
	for i := 1; i <= w.replicas; i++ {
		pf := failNone
		if f == failProbe && i == 1 {
			pf = failProbe
		}
		pods = append(pods, scaleUp(i, pf))
		if i-1 < len(keep) {
			scaleDown(keep[i-1])
		}
	}
	for i := w.replicas; i < len(keep); i++ {
		scaleDown(keep[i])
	}
	w.pods = pods
	return steps
}

// autoscale is the HorizontalPodAutoscaler resizing a Deployment, and the
// Deployment following.
func (g *Generator) autoscale(tn *tenant) []step {
	w := g.pickWorkload(tn, kindDeployment, func(w *workload) bool { return w.hpa != nil })
	if w == nil {
		return nil
	}
	a := w.app
	delta := between(g.rng, 1, 3)
	if g.rng.IntN(2) == 0 {
		delta = -delta
	}
	to := min(max(w.replicas+delta, a.minRep), a.maxRep)
	from := w.replicas
	if to == from {
		return nil
	}
	hpa := controller("horizontal-pod-autoscaler")
	dc := controller("deployment-controller")
	rsc := controller("replicaset-controller")
	rs := w.rs
	var steps []step
	if to > from {
		reason := "cpu resource utilization (percentage of request) above target"
		if g.rng.IntN(4) == 0 {
			reason = "memory resource utilization (percentage of request) above target"
		}
		steps = append(steps,
			g.say(tn, evSpec{obj: *w.hpa, typ: normal, reason: "SuccessfulRescale", by: hpa, message: fmt.Sprintf("New size: %d; reason: %s", to, reason)}),
			g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "ScalingReplicaSet", by: dc,
				message: fmt.Sprintf("Scaled up replica set %s to %d from %d", rs.name, to, from)}))
		if g.rng.IntN(12) == 0 {
			// The namespace's quota stops the ReplicaSet; it retries.
			p := rs.name + "-" + g.suffix()
			steps = append(steps, g.sayRepeating(tn, evSpec{obj: *rs, typ: warning, reason: "FailedCreate", by: rsc,
				message: fmt.Sprintf("Error creating: pods %q is forbidden: exceeded quota: compute-resources, requested: requests.cpu=500m, used: requests.cpu=%dm, limited: requests.cpu=%d",
					p, 3000+100*g.rng.IntN(9), 4)}, between(g.rng, 3, 15)))
			return steps
		}
		pending := failNone
		if g.rng.IntN(4) == 0 {
			pending = failSchedule
		}
		for i := from; i < to; i++ {
			p := g.newPod(tn, w, rs, rs.name+"-"+g.suffix(), nil)
			w.pods = append(w.pods, p)
			f := pending
			steps = append(steps, g.spawn(g.say(tn, evSpec{obj: *rs, typ: normal, reason: "SuccessfulCreate", by: rsc, message: "Created pod: " + p.obj.name}),
				func() []step { return g.podStart(tn, w, p, f) }))
		}
	} else {
		steps = append(steps,
			g.say(tn, evSpec{obj: *w.hpa, typ: normal, reason: "SuccessfulRescale", by: hpa, message: fmt.Sprintf("New size: %d; reason: All metrics below target", to)}),
			g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "ScalingReplicaSet", by: dc,
				message: fmt.Sprintf("Scaled down replica set %s to %d from %d", rs.name, to, from)}))
		// The ReplicaSet deletes its newest pods.
		for i := 0; i < from-to; i++ {
			j := len(w.pods) - 1
			for j >= 0 && w.pods[j].owner != rs {
				j--
			}
			if j < 0 {
				break
			}
			p := w.pods[j]
			w.pods = append(w.pods[:j], w.pods[j+1:]...)
			steps = append(steps, g.spawn(do(func() { p.gone = true }, g.say(tn, evSpec{obj: *p.owner, typ: normal, reason: "SuccessfulDelete", by: rsc, message: "Deleted pod: " + p.obj.name})),
				func() []step { return []step{g.killing(tn, w, p)} }))
		}
	}
	w.replicas = to
	return steps
}

// sayRepeating is say for an event that repeats up to budget times.
func (g *Generator) sayRepeating(tn *tenant, s evSpec, budget int) step {
	return func() (state, bool) {
		st, _ := g.record(tn, s, nil, budget)
		return st, true
	}
}

// runningPod picks a pod of a long-running workload that is still there.
func (g *Generator) runningPod(tn *tenant) (*workload, *pod) {
	w := g.pickWorkload(tn, "", func(w *workload) bool {
		return w.app.kind != kindCronJob && len(w.pods) > 0
	})
	if w == nil {
		return nil, nil
	}
	p := w.pods[g.rng.IntN(len(w.pods))]
	if p.gone {
		return nil, nil
	}
	return w, p
}

// restart is the kubelet starting a container again: the Pulled, Created and
// Started events of the container get count+1.
func (g *Generator) restart(tn *tenant, w *workload, p *pod, budget int) []step {
	c := evSpec{obj: p.obj, fieldPath: containerPath(w.app.container), typ: normal, by: kubelet(p.node)}
	pulled, created, started := c, c, c
	pulled.reason, pulled.message = "Pulled", fmt.Sprintf("Container image %q already present on machine", w.image)
	created.reason, created.message = "Created", "Created container: "+w.app.container
	started.reason, started.message = "Started", "Started container "+w.app.container
	return []step{
		g.podSlot(tn, p, &p.pulled, pulled, budget),
		g.podSlot(tn, p, &p.created, created, budget),
		g.podSlot(tn, p, &p.started, started, budget),
	}
}

func (g *Generator) crashLoop(tn *tenant) []step {
	w, p := g.runningPod(tn)
	if p == nil {
		return nil
	}
	return append(g.restart(tn, w, p, between(g.rng, 2, 10)), g.backOff(tn, w, p))
}

func (g *Generator) readinessFailure(tn *tenant) []step {
	w, p := g.runningPod(tn)
	if p == nil || w.app.probe == "" {
		return nil
	}
	return []step{g.sayPod(tn, p, g.readinessSpec(tn, w, p), between(g.rng, 3, 80))}
}

func (g *Generator) livenessFailure(tn *tenant) []step {
	w, p := g.runningPod(tn)
	if p == nil || w.app.probe == "" {
		return nil
	}
	a := w.app
	kl := kubelet(p.node)
	msg := "Liveness probe failed: HTTP probe failed with statuscode: 500"
	if g.rng.IntN(2) == 0 {
		msg = fmt.Sprintf("Liveness probe failed: Get \"http://%s:%d%s\": dial tcp %s:%d: connect: connection refused", p.ip, a.port, a.probe, p.ip, a.port)
	}
	steps := []step{
		// Three failed probes in a row (failureThreshold) before the restart.
		g.sayPod(tn, p, evSpec{obj: p.obj, fieldPath: containerPath(a.container), typ: warning, reason: "Unhealthy", by: kl, message: msg}, 2),
		g.sayPod(tn, p, evSpec{obj: p.obj, fieldPath: containerPath(a.container), typ: normal, reason: "Killing", by: kl,
			message: fmt.Sprintf("Container %s failed liveness probe, will be restarted", a.container)}, 0),
	}
	return append(steps, g.restart(tn, w, p, 0)...)
}

func (g *Generator) statefulSetChange(tn *tenant) []step {
	w := g.pickWorkload(tn, kindStatefulSet, nil)
	if w == nil {
		return nil
	}
	a := w.app
	ssc := controller("statefulset-controller")
	switch {
	case w.replicas < a.maxRep && g.rng.IntN(3) == 0:
		// Scale up: a new ordinal, and a new claim unless an earlier scale
		// down left one behind.
		i := w.replicas
		w.replicas++
		p := g.newPod(tn, w, &w.obj, fmt.Sprintf("%s-%d", a.name, i), nil)
		w.pods = append(w.pods, p)
		var steps []step
		claim := fmt.Sprintf("%s-%s-%d", a.pvc, a.name, i)
		var provision []step
		if i >= len(w.pvs) {
			var pv string
			provision, pv = g.provision(tn, w, claim)
			w.pvs = append(w.pvs, pv)
			steps = append(steps, g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SuccessfulCreate", by: ssc,
				message: fmt.Sprintf("create Claim %s Pod %s in StatefulSet %s success", claim, p.obj.name, a.name)}))
		}
		steps = append(steps, g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SuccessfulCreate", by: ssc,
			message: fmt.Sprintf("create Pod %s in StatefulSet %s successful", p.obj.name, a.name)}))
		steps = append(steps, provision...)
		return append(steps, g.statefulPodStart(tn, w, p, i)...)
	case w.replicas > a.minRep && g.rng.IntN(4) == 0:
		w.replicas--
		p := w.pods[len(w.pods)-1]
		w.pods = w.pods[:len(w.pods)-1]
		return []step{
			do(func() { p.gone = true }, g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SuccessfulDelete", by: ssc,
				message: fmt.Sprintf("delete Pod %s in StatefulSet %s successful", p.obj.name, a.name)})),
			g.killing(tn, w, p),
		}
	}
	// A rolling restart of one ordinal: same name, new pod.
	if len(w.pods) == 0 {
		return nil
	}
	i := g.rng.IntN(len(w.pods))
	old := w.pods[i]
	p := g.newPod(tn, w, &w.obj, old.obj.name, nil)
	w.pods[i] = p
	steps := []step{
		do(func() { old.gone = true }, g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SuccessfulDelete", by: ssc,
			message: fmt.Sprintf("delete Pod %s in StatefulSet %s successful", old.obj.name, a.name)})),
		g.killing(tn, w, old),
		g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SuccessfulCreate", by: ssc,
			message: fmt.Sprintf("create Pod %s in StatefulSet %s successful", p.obj.name, a.name)}),
	}
	return append(steps, g.statefulPodStart(tn, w, p, i)...)
}

// provision is a claim's dynamic provisioning with a WaitForFirstConsumer
// storage class. It returns the steps and the volume's name, which, as
// with every dynamically provisioned volume, is "pvc-" + the claim's uid.
func (g *Generator) provision(tn *tenant, w *workload, claim string) ([]step, string) {
	pvc := object{kind: "PersistentVolumeClaim", apiVersion: "v1", namespace: w.obj.namespace, name: claim, uid: g.uuid()}
	pv := "pvc-" + pvc.uid
	pvctl := controller("persistentvolume-controller")
	return []step{
		g.say(tn, evSpec{obj: pvc, typ: normal, reason: "WaitForFirstConsumer", by: pvctl, message: "waiting for first consumer to be created before binding"}),
		g.sayRepeating(tn, evSpec{obj: pvc, typ: normal, reason: "ExternalProvisioning", by: pvctl,
			message: fmt.Sprintf("Waiting for a volume to be created either by the external provisioner '%s' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.", tn.provisionerName)},
			between(g.rng, 1, 3)),
		g.say(tn, evSpec{obj: pvc, typ: normal, reason: "Provisioning", by: tn.provisioner,
			message: fmt.Sprintf("External provisioner is provisioning volume for claim %q", pvc.namespace+"/"+claim)}),
		g.say(tn, evSpec{obj: pvc, typ: normal, reason: "ProvisioningSucceeded", by: tn.provisioner, message: "Successfully provisioned volume " + pv}),
	}, pv
}

// statefulPodStart is podStart for ordinal i of a StatefulSet.
func (g *Generator) statefulPodStart(tn *tenant, w *workload, p *pod, i int) []step {
	steps := g.podStart(tn, w, p, failNone)
	if tn.provider == providerKubeadm || i >= len(w.pvs) {
		return steps
	}
	// Network disks are attached after scheduling, before the kubelet mounts
	// them.
	attach := g.sayPod(tn, p, evSpec{obj: p.obj, typ: normal, reason: "SuccessfulAttachVolume", by: controller("attachdetach-controller"),
		message: fmt.Sprintf("AttachVolume.Attach succeeded for volume %q", w.pvs[i])}, 0)
	return append(steps[:1], append([]step{attach}, steps[1:]...)...)
}

func (g *Generator) rolloutDaemonSet(tn *tenant) []step {
	w := g.pickWorkload(tn, kindDaemonSet, nil)
	if w == nil {
		return nil
	}
	dsc := controller("daemonset-controller")
	w.image = g.nextImage(tn, w)
	var steps []step
	for i, old := range w.pods {
		p := g.newPod(tn, w, &w.obj, w.app.name+"-"+g.suffix(), old.node)
		w.pods[i] = p
		steps = append(steps,
			g.spawn(do(func() { old.gone = true }, g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SuccessfulDelete", by: dsc, message: "Deleted pod: " + old.obj.name})),
				func() []step { return []step{g.killing(tn, w, old)} }),
			g.spawn(g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SuccessfulCreate", by: dsc, message: "Created pod: " + p.obj.name}),
				func() []step { return g.podStart(tn, w, p, failNone) }),
		)
	}
	return steps
}

func (g *Generator) runCronJob(tn *tenant) []step {
	w := g.pickWorkload(tn, kindCronJob, nil)
	if w == nil {
		return nil
	}
	a := w.app
	cjc := controller("cronjob-controller")
	jc := controller("job-controller")
	// Job names carry the scheduled time in minutes since the epoch.
	minute := g.t.Unix() / 60 / a.every * a.every
	if minute <= w.lastRun {
		minute = w.lastRun + a.every
	}
	w.lastRun = minute
	job := object{kind: "Job", apiVersion: "batch/v1", namespace: w.obj.namespace, name: fmt.Sprintf("%s-%d", a.name, minute), uid: g.uuid()}
	p := g.newPod(tn, w, &job, job.name+"-"+g.suffix(), nil)
	w.jobs = append(w.jobs, job.name)
	ok := g.rng.IntN(12) > 0
	f := failNone
	if !ok {
		f = failCrash
	}
	steps := []step{
		g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SuccessfulCreate", by: cjc, message: "Created job " + job.name}),
		g.say(tn, evSpec{obj: job, typ: normal, reason: "SuccessfulCreate", by: jc, message: "Created pod: " + p.obj.name}),
	}
	steps = append(steps, g.podStart(tn, w, p, f)...)
	if ok {
		steps = append(steps,
			do(func() { p.gone = true }, g.say(tn, evSpec{obj: job, typ: normal, reason: "Completed", by: jc, message: "Job completed"})),
			g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SawCompletedJob", by: cjc, message: fmt.Sprintf("Saw completed job: %s, status: Complete", job.name)}))
	} else {
		steps = append(steps,
			do(func() { p.gone = true }, g.say(tn, evSpec{obj: job, typ: warning, reason: "BackoffLimitExceeded", by: jc, message: "Job has reached the specified backoff limit"})),
			g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SawCompletedJob", by: cjc, message: fmt.Sprintf("Saw completed job: %s, status: Failed", job.name)}))
	}
	if len(w.jobs) > jobHistory {
		oldest := w.jobs[0]
		w.jobs = append(w.jobs[:0], w.jobs[1:]...)
		steps = append(steps, g.say(tn, evSpec{obj: w.obj, typ: normal, reason: "SuccessfulDelete", by: cjc, message: "Deleted job " + oldest}))
	}
	return steps
}

func (g *Generator) pickNode(tn *tenant, ready bool) *node {
	var cands []*node
	for _, n := range tn.nodes {
		if n.ready == ready {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[g.rng.IntN(len(cands))]
}

func nodeStatus(n *node, status string) string {
	return fmt.Sprintf("Node %s status is now: %s", n.obj.name, status)
}

// nodeNotReady is a node that stops posting status for a while: the node
// controller notices, marks its pods, and the kubelet comes back.
func (g *Generator) nodeNotReady(tn *tenant) []step {
	n := g.pickNode(tn, true)
	if n == nil || len(tn.nodes) < 2 {
		return nil
	}
	nc := controller("node-controller")
	steps := []step{do(func() { n.ready = false }, g.say(tn, evSpec{obj: n.obj, typ: normal, reason: "NodeNotReady", by: nc, message: nodeStatus(n, "NodeNotReady")}))}
	marked := 0
	for _, w := range g.workloads(tn, "") {
		for _, p := range w.pods {
			if p.node == n && !p.gone && marked < 3 {
				marked++
				steps = append(steps, g.sayPod(tn, p, evSpec{obj: p.obj, typ: warning, reason: "NodeNotReady", by: nc, message: "Node is not ready"}, 0))
			}
		}
	}
	return append(steps, do(func() { n.ready = true }, g.say(tn, evSpec{obj: kubeletNodeRef(n), typ: normal, reason: "NodeReady", by: kubelet(n), message: nodeStatus(n, "NodeReady")})))
}

// nodeReboot is what a node says when it comes back from a reboot.
func (g *Generator) nodeReboot(tn *tenant) []step {
	n := g.pickNode(tn, true)
	if n == nil {
		return nil
	}
	kl := kubelet(n)
	ref := kubeletNodeRef(n)
	steps := []step{
		do(func() { n.ready = false }, g.say(tn, evSpec{obj: ref, typ: warning, reason: "Rebooted", by: kl,
			message: fmt.Sprintf("Node %s has been rebooted, boot id: %s", n.obj.name, g.uuid())})),
		g.say(tn, evSpec{obj: ref, typ: normal, reason: "Starting", by: kl, message: "Starting kubelet."}),
	}
	if g.rng.IntN(3) == 0 {
		steps = append(steps, g.say(tn, evSpec{obj: ref, typ: warning, reason: "InvalidDiskCapacity", by: kl, message: "invalid capacity 0 on image filesystem"}))
	}
	for _, s := range []string{"NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"} {
		steps = append(steps, g.say(tn, evSpec{obj: ref, typ: normal, reason: s, by: kl, message: nodeStatus(n, s)}))
	}
	steps = append(steps,
		g.say(tn, evSpec{obj: ref, typ: normal, reason: "NodeAllocatableEnforced", by: kl, message: "Updated Node Allocatable limit across pods"}),
		do(func() { n.ready = true }, g.say(tn, evSpec{obj: ref, typ: normal, reason: "NodeReady", by: kl, message: nodeStatus(n, "NodeReady")})),
		// kube-proxy writes through events.k8s.io with an empty note.
		g.say(tn, evSpec{obj: ref, typ: normal, reason: "Starting", action: "StartKubeProxy", by: reporter{
			component: tn.kubeProxy.component, instance: "kube-proxy-" + n.obj.name, manager: tn.kubeProxy.manager, modern: true}}),
	)
	// Its pods' sandboxes are recreated and their containers start again.
	restarted := 0
	for _, w := range g.workloads(tn, "") {
		if w.app.kind == kindCronJob {
			continue
		}
		for _, p := range w.pods {
			if p.node == n && !p.gone && restarted < 2 {
				restarted++
				steps = append(steps, g.sayPod(tn, p, evSpec{obj: p.obj, typ: normal, reason: "SandboxChanged", by: kl,
					message: "Pod sandbox changed, it will be killed and re-created."}, 0))
				steps = append(steps, g.restart(tn, w, p, 0)...)
			}
		}
	}
	return steps
}

// controllerManagerRestart: a new kube-controller-manager leader registers
// every node again.
func (g *Generator) controllerManagerRestart(tn *tenant) []step {
	nc := controller("node-controller")
	var steps []step
	for _, n := range tn.nodes {
		steps = append(steps, g.say(tn, evSpec{obj: n.obj, typ: normal, reason: "RegisteredNode", by: nc,
			message: fmt.Sprintf("Node %s event: Registered Node %s in Controller", n.obj.name, n.obj.name)}))
	}
	return steps
}

func (g *Generator) ensureLoadBalancer(tn *tenant) []step {
	w := g.pickWorkload(tn, kindDeployment, func(w *workload) bool { return w.svc != nil })
	if w == nil {
		return nil
	}
	svc := *w.svc
	if tn.provider == providerKubeadm {
		n := g.readyNode(tn)
		return []step{
			g.say(tn, evSpec{obj: svc, typ: normal, reason: "IPAllocated", by: tn.lbController,
				message: fmt.Sprintf("Assigned IP [\"192.168.%d.%d\"]", g.rng.IntN(256), 200+g.rng.IntN(50))}),
			g.say(tn, evSpec{obj: svc, typ: normal, reason: "nodeAssigned", by: reporter{component: "metallb-speaker", manager: "speaker"},
				message: fmt.Sprintf("announcing from node %q with protocol %q", n.obj.name, "layer2")}),
		}
	}
	if g.rng.IntN(3) == 0 {
		return []step{g.say(tn, evSpec{obj: svc, typ: normal, reason: "UpdatedLoadBalancer", by: tn.lbController, message: "Updated load balancer with new hosts"})}
	}
	return []step{
		g.say(tn, evSpec{obj: svc, typ: normal, reason: "EnsuringLoadBalancer", by: tn.lbController, message: "Ensuring load balancer"}),
		g.say(tn, evSpec{obj: svc, typ: normal, reason: "EnsuredLoadBalancer", by: tn.lbController, message: "Ensured load balancer"}),
	}
}

// metricsUnavailable is an HPA whose metrics server does not answer.
func (g *Generator) metricsUnavailable(tn *tenant) []step {
	w := g.pickWorkload(tn, kindDeployment, func(w *workload) bool { return w.hpa != nil })
	if w == nil {
		return nil
	}
	hpa := controller("horizontal-pod-autoscaler")
	const cause = "unable to get metrics for resource cpu: no metrics returned from resource metrics API"
	return []step{
		g.sayRepeating(tn, evSpec{obj: *w.hpa, typ: warning, reason: "FailedGetResourceMetric", by: hpa, message: "failed to get cpu utilization: " + cause}, between(g.rng, 3, 30)),
		g.sayRepeating(tn, evSpec{obj: *w.hpa, typ: warning, reason: "FailedComputeMetricsReplicas", by: hpa,
			message: "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: " + cause}, between(g.rng, 3, 30)),
	}
}

// preemption is the scheduler evicting a lower-priority pod to make room for
// a pending one; the victim's owner replaces it.
func (g *Generator) preemption(tn *tenant) []step {
	w := g.pickWorkload(tn, kindDeployment, func(w *workload) bool { return len(w.pods) > 0 && w.rs != nil })
	if w == nil {
		return nil
	}
	i := g.rng.IntN(len(w.pods))
	victim := w.pods[i]
	if victim.gone || victim.owner != w.rs {
		return nil
	}
	// The preemptor is a pod of another workload of the cluster, which the
	// event references in "related".
	pw := g.pickWorkload(tn, kindDeployment, func(o *workload) bool { return o != w && o.rs != nil })
	if pw == nil {
		return nil
	}
	preemptor := g.newPod(tn, pw, pw.rs, pw.rs.name+"-"+g.suffix(), victim.node)
	rsc := controller("replicaset-controller")
	repl := g.newPod(tn, w, w.rs, w.rs.name+"-"+g.suffix(), nil)
	w.pods[i] = repl
	preempted := evSpec{obj: victim.obj, typ: normal, reason: "Preempted", action: "Preempting", by: tn.scheduler,
		message: fmt.Sprintf("Preempted by pod %s on node %s", preemptor.obj.uid, victim.node.obj.name)}
	steps := []step{
		func() (state, bool) {
			st, le := g.record(tn, preempted, nil, 0)
			le.ev.Related = &corev1.ObjectReference{Kind: "Pod", Namespace: preemptor.obj.namespace, Name: preemptor.obj.name,
				UID: types.UID(preemptor.obj.uid), APIVersion: "v1", ResourceVersion: strconv.FormatUint(tn.rv-uint64(g.rng.IntN(20)), 10)}
			le.ev.ManagedFields[0].FieldsV1 = metav1.NewFieldsV1(fieldsModernRelated)
			return st, true
		},
		g.killing(tn, w, victim),
		g.spawn(g.say(tn, evSpec{obj: *w.rs, typ: normal, reason: "SuccessfulCreate", by: rsc, message: "Created pod: " + repl.obj.name}),
			func() []step { return g.podStart(tn, w, repl, failNone) }),
	}
	return steps
}
