package etcdfront_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
)

// frontProcess runs `eventpipe etcd` as a process of its own on dev mode's
// NATS and ClickHouse, on a fixed port, so that it can be killed and
// started again where kube-apiserver looks for it.
type frontProcess struct {
	bin, dataDir string
	env          *devenv.Env
	port         int
	cmd          *exec.Cmd
}

func (f *frontProcess) start(t *testing.T) {
	t.Helper()
	args := []string{"etcd", "--nats.url", f.env.NATSURL, "--clickhouse.addr", f.env.ClickHouseAddr,
		"--clickhouse.database", f.env.Database, "--etcd.addr", "127.0.0.1:" + strconv.Itoa(f.port), "--etcd.insecure",
		"--etcd.scope", devenv.EtcdScope.String(), "--metrics.addr", "127.0.0.1:0"}
	if tiers := filepath.Join(f.dataDir, "tiers.yaml"); fileExists(tiers) {
		args = append(args, "--tiers.config", tiers)
	}
	f.cmd = exec.Command(f.bin, args...)
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the etcd front listens", time.Minute, func() (bool, string) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(f.port), time.Second)
		if err != nil {
			return false, err.Error()
		}
		_ = c.Close()
		return true, ""
	})
}

// kill ends the front with SIGKILL, as a crash would.
func (f *frontProcess) kill() {
	_ = f.cmd.Process.Kill()
	_ = f.cmd.Wait()
}

// TestFrontKilledUnderLoad kills -9 the etcd front while events are created
// through kube-apiserver at about 500/s, and starts it again: kube-apiserver
// recovers without a restart, every create answered 201 is stored exactly
// once, and an informer through kube-apiserver ends in sync.
func TestFrontKilledUnderLoad(t *testing.T) {
	t.Parallel()
	bin, err := devtest.BuildEventpipe(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	eo := devtest.Options(t)
	eo.EtcdPort = -1
	env := devtest.Run(t, eo)
	f := &frontProcess{bin: bin, dataDir: eo.DataDir, env: env, port: devtest.FreePort(t)}
	f.start(t)
	t.Cleanup(func() { devtest.StopProcess(t, f.cmd) })
	c := kubetest.StartCluster(t, kubetest.Options{ExtraArgs: []string{"--etcd-servers-overrides=/events#http://127.0.0.1:" + strconv.Itoa(f.port)}})
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// An informer through kube-apiserver, as a controller would run it.
	factory := informers.NewSharedInformerFactory(cs, 0)
	inf := factory.Core().V1().Events().Informer()
	factory.Start(ctx.Done())
	defer func() { cancel(); factory.Shutdown() }() // Shutdown waits for the informers, which stop with ctx
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}

	// 500 creates/s for 12 s from 5 workers; the front is killed at 3 s and
	// started again at 5 s.
	const rate, workers, run = 500, 5, 12 * time.Second
	var created sync.Map
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second * workers / rate)
			defer tick.Stop()
			for i := 0; time.Since(start) < run; i++ {
				<-tick.C
				name := fmt.Sprintf("load-%d-%05d", w, i)
				if _, err := cs.CoreV1().Events("default").Create(ctx, event("default", name, "Load"), metav1.CreateOptions{}); err != nil {
					failed.Add(1)
					continue
				}
				created.Store(name, true)
				ok.Add(1)
			}
		}()
	}
	// The scenario's schedule: down from 3 s to 5 s into the load.
	<-time.After(time.Until(start.Add(3 * time.Second)))
	f.kill()
	<-time.After(time.Until(start.Add(5 * time.Second)))
	f.start(t)
	wg.Wait()
	t.Logf("%d creates answered 201, %d failed while the front was down", ok.Load(), failed.Load())
	if failed.Load() == 0 {
		t.Fatal("no create failed: the front was not down during the load")
	}
	// kube-apiserver recovers by itself: new creates succeed.
	waitFor(t, "a create after the restart", time.Minute, func() (bool, string) {
		_, err := cs.CoreV1().Events("default").Create(ctx, event("default", "after-restart", "Load"), metav1.CreateOptions{})
		return err == nil, fmt.Sprint(err)
	})
	created.Store("after-restart", true)
	ok.Add(1)

	// The informer has every created event.
	waitFor(t, "the informer in sync", 2*time.Minute, func() (bool, string) {
		missing := 0
		created.Range(func(k, _ any) bool {
			if _, exists, _ := inf.GetStore().GetByKey("default/" + k.(string)); !exists {
				missing++
			}
			return true
		})
		return missing == 0, fmt.Sprintf("%d of %d missing", missing, ok.Load())
	})
	// Each create answered 201 is stored exactly once.
	sc := devenv.EtcdScope
	creates := map[string]int{}
	ns := "default"
	for _, r := range eventtest.States(t, env.JS, eventlog.FilterSubject(&sc, &ns)) {
		if r.Op == eventlog.OpCreate {
			creates[r.Key.Name]++
		}
	}
	created.Range(func(k, _ any) bool {
		if n := creates[k.(string)]; n != 1 {
			t.Errorf("%s: %d create states, want 1", k, n)
		}
		return true
	})
}

// TestNATSOutage stops JetStream for 30 s under the front: creates through
// kube-apiserver fail meanwhile, as they do while etcd is down, and succeed
// again by themselves once it is back, with nothing restarted.
func TestNATSOutage(t *testing.T) {
	t.Parallel()
	bin, err := devtest.BuildEventpipe(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ch := chtest.ForTest(t)
	ns := natstest.ForTest(t)
	port := ns.Addr().(*net.TCPAddr).Port
	f := &frontProcess{bin: bin, env: &devenv.Env{NATSURL: ns.ClientURL(), ClickHouseAddr: ch.Addr, Database: "eventpipe"},
		port: devtest.FreePort(t), dataDir: t.TempDir()}
	f.start(t)
	t.Cleanup(func() { devtest.StopProcess(t, f.cmd) })
	c := kubetest.StartCluster(t, kubetest.Options{ExtraArgs: []string{"--etcd-servers-overrides=/events#http://127.0.0.1:" + strconv.Itoa(f.port)}})
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create := func(name string) error {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := cs.CoreV1().Events("default").Create(cctx, event("default", name, "Outage"), metav1.CreateOptions{})
		return err
	}
	if err := create("before"); err != nil {
		t.Fatalf("create before the outage: %v", err)
	}
	ns.Shutdown()
	down := time.Now()
	if err := create("during"); err == nil {
		t.Fatal("a create succeeded while JetStream was down")
	} else {
		t.Logf("create while JetStream is down: %v", err)
	}
	<-time.After(time.Until(down.Add(30 * time.Second))) // the outage's length
	ns = natstest.Restart(t, ns.Dir, port)
	waitFor(t, "creates succeed again", 2*time.Minute, func() (bool, string) {
		err := create("after")
		return err == nil, fmt.Sprint(err)
	})
	names := map[string]bool{}
	for _, r := range eventtest.States(t, ns.JS, eventlog.FilterSubject(&devenv.EtcdScope, nil)) {
		names[r.Key.Name] = true
	}
	if !names["before"] || !names["after"] {
		t.Fatalf("the log holds %v; want before and after", names)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
