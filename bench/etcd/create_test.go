// Package etcdbench measures event creates through a stock kube-apiserver
// 1.37 with its Events in etcd 3.4 against the same kube-apiserver with its
// Events in eventpipe through the etcd front
// (--etcd-servers-overrides=/events#<front>), side by side in one run with
// the same load client (issue 16; the target is in bench/README.md's
// results table).
package etcdbench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eventpipe/eventpipe/bench/internal/load"
	"github.com/eventpipe/eventpipe/bench/internal/procstat"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
)

var (
	workersFlag = flag.String("etcdbench.workers", "16,32,64",
		"concurrent create workers, each with its own connection; one measured run per number, the best counts")
	createsFlag = flag.Int("etcdbench.creates", 1000, "creates measured per worker count")
	warmupFlag  = flag.Int("etcdbench.warmup", 200, "creates before each measured run, not measured")
	storesFlag  = flag.String("etcdbench.stores", storeEtcd+","+storeEventpipe+","+storeEventpipeSyncAlways,
		"where kube-apiserver keeps its Events, in this order: "+storeEtcd+" (its etcd), "+storeEventpipe+
			" (eventpipe through the etcd front, JetStream's default sync interval) and "+storeEventpipeSyncAlways+
			" (the same, JetStream fsyncs every write before acknowledging it)")
	cpuProfile = flag.String("etcdbench.cpuprofile", "",
		"write a CPU profile of this process (the load client and, with eventpipe, the front, JetStream and the writer) during each measured run to PREFIX.<store>.workers=N.prof")
)

// Where kube-apiserver keeps its Events; sub-benchmarks are named store=NAME.
const (
	storeEtcd                = "etcd"
	storeEventpipe           = "eventpipe"
	storeEventpipeSyncAlways = "eventpipe-sync-always"
)

// BenchmarkCreateThroughKubeAPIServer measures single-event creates sent to
// kube-apiserver 1.37 (kubetest's defaults: event TTL 1h, protobuf storage)
// by the load client of bench/apiserver (bench/internal/load: kubelet-style
// core/v1 Events of about 1 KB, each with a new name, protobuf, N workers
// each waiting for the answer before sending the next), with kube-apiserver
// keeping its Events
//
//   - store=etcd: in its etcd, as every cluster does;
//   - store=eventpipe: in eventpipe through the etcd front, eventpipe in
//     this process as dev mode runs it (JetStream embedded, default sync
//     interval, writer into clickhouse-server);
//   - store=eventpipe-sync-always: the same, JetStream fsyncing each write.
//
// Everything else kube-apiserver stores (namespaces, leases of its own,
// RBAC) is in its etcd in every setup. One setup runs at a time, each
// started fresh and stopped before the next. For each worker count of
// -etcdbench.workers: -etcdbench.warmup creates, then -etcdbench.creates
// measured ones; the best run's creates/s and latency are reported, with
// the CPU time kube-apiserver, etcd and this process used in it. At the
// end: kube-apiserver's peak RSS, etcd's database growth per 10,000
// creates (Maintenance.Status DbSize and DbSizeInUse, before and after
// every create of the setup) and etcd's WAL fsyncs per create (its
// etcd_disk_wal_fsync_duration_seconds_count). Use -benchtime 1x.
func BenchmarkCreateThroughKubeAPIServer(b *testing.B) {
	var results []*outcome
	for _, st := range splitList(*storesFlag) {
		switch st {
		case storeEtcd, storeEventpipe, storeEventpipeSyncAlways:
		default:
			b.Fatalf("-etcdbench.stores: unknown store %q", st)
		}
		b.Run("store="+st, func(b *testing.B) {
			o := benchStore(b, st)
			results = append(results, o)
		})
	}
	printSummary(results)
}

// outcome is what one setup did.
type outcome struct {
	store   string
	workers int     // of the best run
	rate    float64 // creates/s of the best run
	p50     time.Duration
	p99     time.Duration
	// CPU seconds of the best run: kube-apiserver, etcd, this process (the
	// load client, and eventpipe in its setups), its other children
	// (clickhouse-server in eventpipe's setups), and the rest of the
	// machine (other work, which skews the numbers).
	apiCPU, etcdCPU, selfCPU, chCPU, restCPU float64
	creates, elapsed                         float64 // of the best run
	apiPeakRSS                               float64 // MiB
	dbGrowth, dbInUseGrowth                  float64 // bytes per 10,000 creates
	eventKeys                                int64   // under /registry/events/ in etcd at the end
	walFsyncs                                float64 // per create, all creates of the setup
	errors                                   int64
}

// cpuSnap is CPU time used so far.
type cpuSnap struct{ api, etcd, self, children, machine time.Duration }

func snapCPU(b *testing.B, c *kubetest.Cluster) cpuSnap {
	b.Helper()
	var s cpuSnap
	var err error
	if s.api, err = procstat.ProcessCPU(c.APIServerPID()); err != nil {
		b.Fatal(err)
	}
	if s.etcd, err = procstat.ProcessCPU(c.EtcdPID()); err != nil {
		b.Fatal(err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, pid := range procstat.Descendants(os.Getpid()) {
		if pid == c.APIServerPID() || pid == c.EtcdPID() {
			continue
		}
		if d, err := procstat.ProcessCPU(pid); err == nil {
			s.children += d
		}
	}
	if s.machine, err = procstat.MachineBusy(); err != nil {
		b.Fatal(err)
	}
	return s
}

func benchStore(b *testing.B, store string) *outcome {
	ctx := context.Background()
	workers := parseInts(b, "etcdbench.workers", *workersFlag)
	var opts kubetest.Options
	if store != storeEtcd {
		env := startEventpipe(b, store)
		opts.ExtraArgs = []string{"--etcd-servers-overrides=/events#" + env.EtcdEndpoint}
	}
	c := kubetest.StartCluster(b, opts)
	cs := kubernetes.NewForConfigOrDie(c.Config)
	for _, ns := range load.Namespaces() {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	ecli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.EtcdURL}, DialTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer ecli.Close()
	before := etcdStatus(b, ecli, c.EtcdURL)
	fsyncsBefore := walFsyncs(b, c.EtcdURL)

	o := &outcome{store: store}
	f := load.NewEventFactory()
	var all int64 // every create that succeeded, warm-ups too
	for _, n := range workers {
		creators := make([]load.Creator, n)
		for i := range creators {
			if creators[i], err = load.NewRawCreator(c.Config, load.ContentProtobuf); err != nil {
				b.Fatal(err)
			}
		}
		w := load.Run(ctx, creators, f, time.Time{}, int64(*warmupFlag))
		if e := w.Errs.Load(); e > 0 {
			b.Fatalf("warm-up with %d workers: %d creates failed, first: %v", n, e, w.FirstErr)
		}
		all += w.OK.Load()
		stopProfile := startProfile(b, store, n)
		s0 := snapCPU(b, c)
		r := load.Run(ctx, creators, f, time.Time{}, int64(*createsFlag))
		s1 := snapCPU(b, c)
		stopProfile()
		all += r.OK.Load()
		o.errors += r.Errs.Load()
		if e := r.Errs.Load(); e > 0 {
			// Reported, not failed on: a failed benchmark prints no metrics.
			b.Logf("WARNING: %d workers: %d of %d creates failed, first: %v", n, e, e+r.OK.Load(), r.FirstErr)
		}
		rate := float64(r.OK.Load()) / r.Elapsed.Seconds()
		api, etcd, self := (s1.api - s0.api).Seconds(), (s1.etcd - s0.etcd).Seconds(), (s1.self - s0.self).Seconds()
		ch := (s1.children - s0.children).Seconds()
		rest := max(0, (s1.machine-s0.machine).Seconds()-api-etcd-self-ch)
		b.Logf("%s, %d workers: %.0f creates/s, p50 %.1f ms, p99 %.1f ms; CPU s kube-apiserver %.2f, etcd %.2f, this process %.2f, clickhouse %.2f, other work %.2f in %.2f s",
			store, n, rate, load.MS(r.Lat.Pct(0.5)), load.MS(r.Lat.Pct(0.99)), api, etcd, self, ch, rest, r.Elapsed.Seconds())
		if rate > o.rate {
			o.workers, o.rate, o.creates = n, rate, float64(r.OK.Load())
			o.p50, o.p99 = r.Lat.Pct(0.5), r.Lat.Pct(0.99)
			o.apiCPU, o.etcdCPU, o.selfCPU, o.chCPU, o.restCPU = api, etcd, self, ch, rest
			o.elapsed = r.Elapsed.Seconds()
		}
	}
	after := etcdStatus(b, ecli, c.EtcdURL)
	o.walFsyncs = (walFsyncs(b, c.EtcdURL) - fsyncsBefore) / float64(all)
	per10k := 10000 / float64(all)
	o.dbGrowth = float64(after.DbSize-before.DbSize) * per10k
	o.dbInUseGrowth = float64(after.DbSizeInUse-before.DbSizeInUse) * per10k
	keys, err := ecli.Get(ctx, "/registry/events/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		b.Fatal(err)
	}
	o.eventKeys = keys.Count
	o.apiPeakRSS = peakRSS(b, c.APIServerPID())

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(o.rate, "creates/s")
	b.ReportMetric(float64(o.workers), "workers")
	b.ReportMetric(load.MS(o.p50), "create-p50-ms")
	b.ReportMetric(load.MS(o.p99), "create-p99-ms")
	b.ReportMetric(o.apiCPU, "apiserver-cpu-s")
	b.ReportMetric(o.apiCPU*1e6/o.creates, "apiserver-cpu-µs/create")
	b.ReportMetric(o.etcdCPU*1e6/o.creates, "etcd-cpu-µs/create")
	b.ReportMetric(o.selfCPU*1e6/o.creates, "self-cpu-µs/create")
	b.ReportMetric(o.chCPU*1e6/o.creates, "clickhouse-cpu-µs/create")
	b.ReportMetric(o.restCPU/o.elapsed, "other-cores")
	b.ReportMetric(o.apiPeakRSS, "apiserver-peak-rss-MiB")
	b.ReportMetric(o.dbGrowth/1024, "etcd-db-KiB/10k-creates")
	b.ReportMetric(o.dbInUseGrowth/1024, "etcd-db-inuse-KiB/10k-creates")
	b.ReportMetric(float64(o.eventKeys), "etcd-event-keys")
	b.ReportMetric(o.walFsyncs, "etcd-wal-fsyncs/create")
	b.ReportMetric(float64(o.errors), "errors")
	return o
}

// benchTiers puts the scope of the kube-apiserver behind the etcd front on
// Enterprise (no rate limit, no quota): dev mode's default tier, Free,
// allows 500 events a minute. The tiers are still checked on every write.
const benchTiers = `defaultTier: Free
tenants:
  Project/cluster: Enterprise
`

// startEventpipe runs eventpipe in this process as dev mode does, with its
// etcd front, for store (storeEventpipe or storeEventpipeSyncAlways).
func startEventpipe(b *testing.B, store string) *devenv.Env {
	b.Helper()
	eo := devtest.Options(b)
	eo.EtcdPort = 0
	// The activity pipeline is not part of storing Events (and is a process
	// of its own in production).
	eo.Activities = false
	eo.NATSSyncAlways = store == storeEventpipeSyncAlways
	if err := os.MkdirAll(eo.DataDir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(eo.DataDir, "tiers.yaml"), []byte(benchTiers), 0o644); err != nil {
		b.Fatal(err)
	}
	return devtest.Run(b, eo)
}

// etcdStatus is the Status of etcd's one member.
func etcdStatus(b *testing.B, cli *clientv3.Client, endpoint string) *clientv3.StatusResponse {
	b.Helper()
	st, err := cli.Status(context.Background(), endpoint)
	if err != nil {
		b.Fatalf("etcd status: %v", err)
	}
	return st
}

// walFsyncs reads how many times etcd has fsynced its WAL from its
// Prometheus metrics.
func walFsyncs(b *testing.B, endpoint string) float64 {
	b.Helper()
	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		b.Fatalf("etcd metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "etcd_disk_wal_fsync_duration_seconds_count "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("etcd metrics: %q: %v", sc.Text(), err)
			}
			return n
		}
	}
	b.Fatalf("etcd metrics: no etcd_disk_wal_fsync_duration_seconds_count (%v)", sc.Err())
	return 0
}

// peakRSS is the most resident memory process pid has had, in MiB.
func peakRSS(b *testing.B, pid int) float64 {
	b.Helper()
	_, peak, err := procstat.Memory(pid)
	if err != nil {
		b.Fatal(err)
	}
	return peak
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._=-]+`)

// startProfile starts a CPU profile of this process when
// -etcdbench.cpuprofile is set, and returns what stops it.
func startProfile(b *testing.B, store string, workers int) func() {
	if *cpuProfile == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.workers=%d.prof", *cpuProfile, unsafeName.ReplaceAllString(store, "_"), workers))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// printSummary prints the setups side by side, each against store=etcd.
func printSummary(results []*outcome) {
	var base *outcome
	for _, o := range results {
		if o.store == storeEtcd {
			base = o
		}
	}
	fmt.Printf("\n%-22s %8s %9s %8s %8s %12s %10s %12s %12s %10s %12s\n",
		"store", "workers", "creates/s", "vs etcd", "p99 ms", "apisrv CPU s", "apisrv µs", "apisrv peak", "etcd db/10k", "event keys", "wal fsyncs")
	for _, o := range results {
		ratio := "-"
		if base != nil && base.rate > 0 {
			ratio = fmt.Sprintf("%.2fx", o.rate/base.rate)
		}
		fmt.Printf("%-22s %8d %9.0f %8s %8.1f %12.2f %10.0f %8.0f MiB %8.0f KiB %10d %12.3f\n",
			o.store, o.workers, o.rate, ratio, load.MS(o.p99), o.apiCPU, o.apiCPU*1e6/o.creates, o.apiPeakRSS,
			o.dbGrowth/1024, o.eventKeys, o.walFsyncs)
	}
	fmt.Println()
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseInts reads a comma-separated list of positive integers.
func parseInts(b *testing.B, name, s string) []int {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			b.Fatalf("-%s=%q: want positive integers separated by commas", name, s)
		}
		out = append(out, n)
	}
	return out
}
