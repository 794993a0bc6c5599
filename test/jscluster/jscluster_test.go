// Package jscluster runs eventpipe's API server and writer (dev mode's
// roles, in this process) on a 3-node JetStream cluster of real
// nats-server processes with EVENTS at three replicas, kills the stream's
// leader with SIGKILL during 1,000 creates a second, and checks DESIGN §3
// across the leader change: no acknowledged create lost or stored twice,
// resourceVersions strictly increasing for every reader, a watch and an
// informer in sync, and writes recovering by themselves (issue 18, item 2).
package jscluster

import (
	"context"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

const ns = "jscluster"

func startEventpipe(t *testing.T, c *natstest.Cluster) (*devenv.Env, kubernetes.Interface) {
	t.Helper()
	o := devtest.Options(t)
	o.NATSURL = c.URL()
	o.Stream.Replicas = 3
	o.Activities = false
	o.EtcdPort = -1
	o.Writer.BatchWait = 50 * time.Millisecond
	env := devtest.Run(t, o)
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return env, devtest.NewClient(t, cfg)
}

func TestStreamLeaderKill(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	env, cs := startEventpipe(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// A reader (watch, resumed or relisted by hand) and an informer follow
	// the namespace from before the load.
	r := newReader(cs, ns)
	readCtx, stopReading := context.WithCancel(ctx)
	readDone := make(chan struct{})
	go func() { defer close(readDone); r.run(readCtx) }()
	defer func() { stopReading(); <-readDone }()
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Events().Informer()
	stopInformer := make(chan struct{})
	factory.Start(stopInformer)
	defer func() { close(stopInformer); factory.Shutdown() }()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}

	l := startLoad(cs, ns, 1000)
	loadEnded := false
	defer func() {
		if !loadEnded {
			l.end()
		}
	}()
	waitUntil(t, 30*time.Second, "1,000 creates acknowledged", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.created) >= 1000
	})

	leader := c.StreamLeader(eventlog.StreamName)
	killedAt := time.Now()
	leader.Kill()
	t.Logf("killed the EVENTS leader %s (kill -9)", leader.Name)
	next := c.StreamLeader(eventlog.StreamName)
	t.Logf("new leader %s elected %s after the kill", next.Name, time.Since(killedAt).Round(time.Millisecond))
	// Writes recover by themselves: creates succeed again, with no
	// failure for a while, without anyone restarting anything.
	waitUntil(t, 30*time.Second, "creates succeeding again for 3s", func() bool {
		return time.Since(killedAt) > 5*time.Second && l.failuresSince(time.Now().Add(-3*time.Second)) == 0
	})
	leader.Restart()
	t.Logf("%s restarted and caught up", leader.Name)
	waitUntil(t, 30*time.Second, "3s more of creates", func() bool {
		return time.Since(killedAt) > 15*time.Second
	})
	l.end()
	loadEnded = true
	elapsed := time.Since(l.start)
	l.mu.Lock()
	acked, failed, lastErr := len(l.created), len(l.failed), l.lastErr
	var outage time.Duration
	if failed > 0 {
		outage = l.failed[len(l.failed)-1].Sub(l.failed[0])
	}
	l.mu.Unlock()
	t.Logf("load: %d creates acknowledged in %s (%.0f/s), %d failed over %s (last: %v); latency p50 %s p99 %s",
		acked, elapsed.Round(time.Millisecond), float64(acked)/elapsed.Seconds(), failed, outage.Round(time.Millisecond), lastErr,
		l.percentile(0.5).Round(time.Microsecond), l.percentile(0.99).Round(time.Microsecond))

	// A consistent list holds every acknowledged create at its
	// resourceVersion, and each name once.
	list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	listRV, _ := strconv.ParseUint(list.ResourceVersion, 10, 64)
	listed := map[string]uint64{}
	for _, e := range list.Items {
		seq, _ := strconv.ParseUint(e.ResourceVersion, 10, 64)
		if _, dup := listed[e.Name]; dup {
			t.Errorf("list holds %s twice", e.Name)
		}
		listed[e.Name] = seq
	}
	lost := 0
	l.mu.Lock()
	for name, rv := range l.created {
		if got, ok := listed[name]; !ok || got != rv {
			if lost++; lost <= 10 {
				t.Errorf("acknowledged create %s at %d: listed at %d (present %v)", name, rv, got, ok)
			}
		}
	}
	l.mu.Unlock()
	if lost > 0 {
		t.Fatalf("%d acknowledged creates lost", lost)
	}

	// ClickHouse (what EventQuery and windowed lists read) holds each
	// listed event's one state once.
	if err := env.Writer.WaitFor(ctx, listRV); err != nil {
		t.Fatal(err)
	}
	rows, err := env.Store.Conn().Query(ctx, "SELECT name, count(), any(seq) FROM "+env.Database+".events FINAL WHERE namespace = ? GROUP BY name", ns)
	if err != nil {
		t.Fatal(err)
	}
	indexed := 0
	for rows.Next() {
		var name string
		var n, seq uint64
		if err := rows.Scan(&name, &n, &seq); err != nil {
			t.Fatal(err)
		}
		indexed++
		if want, ok := listed[name]; !ok || n != 1 || seq != want {
			t.Errorf("ClickHouse has %s %d times at %d; the list has it at %d (present %v)", name, n, seq, want, ok)
		}
	}
	rows.Close()
	if indexed != len(listed) {
		t.Errorf("ClickHouse holds %d events, the list %d", indexed, len(listed))
	}

	// The reader and the informer catch up with the list and agree with it.
	waitUntil(t, 30*time.Second, "the watch reader at the list's resourceVersion", func() bool {
		_, last := r.snapshot()
		return last >= listRV
	})
	state, _ := r.snapshot()
	if d := diff(state, listed); d != "" {
		t.Errorf("watch reader differs from the list: %s", d)
	}
	waitUntil(t, 30*time.Second, "the informer in sync with the list", func() bool {
		return diff(informerState(inf), listed) == ""
	})
	r.mu.Lock()
	t.Logf("watch reader: %d events, %d resumes, %d relists", r.events, r.resumes, r.relists)
	for _, v := range r.violations {
		t.Errorf("watch reader: %s", v)
	}
	r.mu.Unlock()
}

func informerState(inf cache.SharedIndexInformer) map[string]uint64 {
	out := map[string]uint64{}
	for _, o := range inf.GetStore().List() {
		e := o.(*corev1.Event)
		out[e.Name], _ = strconv.ParseUint(e.ResourceVersion, 10, 64)
	}
	return out
}

// diff describes how got differs from want, "" when equal.
func diff(got, want map[string]uint64) string {
	var missing, extra, wrong int
	var example string
	for name, rv := range want {
		g, ok := got[name]
		switch {
		case !ok:
			missing++
			example = name + " missing"
		case g != rv:
			wrong++
			example = name + " at " + strconv.FormatUint(g, 10) + ", want " + strconv.FormatUint(rv, 10)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			extra++
			example = name + " extra"
		}
	}
	if missing+extra+wrong == 0 {
		return ""
	}
	return strconv.Itoa(missing) + " missing, " + strconv.Itoa(extra) + " extra, " + strconv.Itoa(wrong) + " at another resourceVersion (e.g. " + example + ")"
}

// waitUntil waits for cond (testenv.WaitFor).
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, what, within, func() (bool, string) { return cond(), "" })
}
