package apiserverbench

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/eventpipe/eventpipe/bench/internal/load"
)

var (
	listEvents       = flag.Int("apibench.list-events", 10000, "events preloaded (through the API) before the list runs, spread evenly over 20 namespaces")
	listRequests     = flag.Int("apibench.list-requests", 200, "lists per run of a one-namespace variant (a paged list counts once)")
	listRequestsAll  = flag.Int("apibench.list-requests-all", 100, "lists per run of an all-namespaces variant (a paged list counts once)")
	listContentTypes = flag.String("apibench.list-encodings", "json",
		"response encodings to list with: json (kubectl) and protobuf (client-go controllers); one sub-benchmark each")
)

// BenchmarkList measures list latency at equal data: both servers are
// preloaded through the API with the same -apibench.list-events events (20
// namespaces), then listed one request at a time, without a limit (a plain
// client-go List; kubectl get --chunk-size=0) and with limit=500 following
// continue tokens to the end (kubectl get's default --chunk-size=500), for
// one namespace and for all namespaces. Lists without a resourceVersion are
// consistent reads (they reflect every acknowledged write); the rv=0
// variants ask for "any" resourceVersion, which kube-apiserver answers from
// its watch cache and eventpipe at its writer's watermark from the index
// alone (what every eventpipe list did before lists were consistent). The latency
// of a request is the time to its last byte (the client's decoding is not
// counted); a paged list's latency is the sum of its pages'. eventpipe is
// listed only once its writer's watermark covers the preload (lists trail
// writes by up to the writer's BatchWait); how long after an event's create
// was answered lists reached it is reported as visible-ms (one sample per
// server, repeated on each of its lines).
func BenchmarkList(b *testing.B) {
	var encodings []string
	for _, e := range strings.Split(*listContentTypes, ",") {
		switch e {
		case "json", "protobuf":
			encodings = append(encodings, e)
		default:
			b.Fatalf("-apibench.list-encodings=%q: want json and/or protobuf", *listContentTypes)
		}
	}
	forEachServer(b, func(b *testing.B, s *server) {
		visible := preload(b, s, *listEvents)
		for _, enc := range encodings {
			ct := load.ContentJSON
			if enc == "protobuf" {
				ct = load.ContentProtobuf
			}
			cs, err := newClient(s, ct)
			if err != nil {
				b.Fatal(err)
			}
			for _, v := range []struct {
				scope string
				limit int64
				rv    string
			}{{"namespace", 0, ""}, {"namespace", 0, "0"}, {"namespace", 500, ""}, {"all", 0, ""}, {"all", 0, "0"}, {"all", 500, ""}} {
				name := fmt.Sprintf("enc=%s/scope=%s/limit=%d", enc, v.scope, v.limit)
				if v.rv != "" {
					name += "/rv=" + v.rv
				}
				b.Run(name, func(b *testing.B) {
					benchList(b, cs, v.scope == "all", v.limit, v.rv)
					// After benchList: ResetTimer drops metrics reported before.
					b.ReportMetric(load.MS(visible), "visible-ms")
				})
			}
		}
	})
}

// preload creates n events with 32 workers, then a marker event, and waits
// until lists are answered at or after the marker's resourceVersion. It
// returns how long that took after the marker's create was answered, then
// checks that a list of all namespaces holds everything and deletes the
// marker.
func preload(b *testing.B, s *server, n int) time.Duration {
	b.Helper()
	ctx := context.Background()
	clients, err := newCreators(s, 32, contentType(b))
	if err != nil {
		b.Fatal(err)
	}
	cs, err := newClient(s, contentType(b))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	r := load.Run(ctx, clients, load.NewEventFactory(), time.Time{}, int64(n))
	if r.Errs.Load() > 0 {
		b.Fatalf("preload: %d creates failed, first: %v", r.Errs.Load(), r.FirstErr)
	}
	// A marker written after the preload: the preload is listed once a
	// list's resourceVersion reaches the marker's (resourceVersions are
	// integers on both servers; eventpipe answers lists at its writer's
	// watermark).
	ev, _ := load.NewEventFactory().Next()
	marker, err := cs.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	done := time.Now()
	b.Logf("%s: preloaded %d events in %s (%.0f/s)", s.name, n, done.Sub(start).Round(time.Millisecond), float64(n)/done.Sub(start).Seconds())
	want, _ := strconv.ParseUint(marker.ResourceVersion, 10, 64)
	for {
		l, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		if rv, _ := strconv.ParseUint(l.ResourceVersion, 10, 64); rv >= want {
			break
		}
		if time.Since(done) > time.Minute {
			b.Fatalf("%s: the preload is not listed 1m after it was written", s.name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	visible := time.Since(done)
	full, err := cs.CoreV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if len(full.Items) != n+1 {
		b.Fatalf("%s: a list of all namespaces holds %d events, want %d", s.name, len(full.Items), n+1)
	}
	// The marker must not count in the lists measured.
	if err := cs.CoreV1().Events(ev.Namespace).Delete(ctx, ev.Name, metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
	for {
		l, err := cs.CoreV1().Events(ev.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + ev.Name})
		if err != nil {
			b.Fatal(err)
		}
		if len(l.Items) == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return visible
}

func benchList(b *testing.B, cs *kubernetes.Clientset, all bool, limit int64, rv string) {
	ctx := context.Background()
	ns := load.Namespaces()
	want := *listEvents / len(ns)
	requests := *listRequests
	if all {
		want, requests = *listEvents, *listRequestsAll
	}
	var lists, pages load.Latencies
	var bytes, pageCount int
	clk := startClock(b)
	for i := range requests {
		namespace := ""
		if !all {
			namespace = ns[i%len(ns)]
		}
		var total time.Duration
		items, cont := 0, ""
		for {
			req := cs.CoreV1().RESTClient().Get().Resource("events").Namespace(namespace).
				VersionedParams(&metav1.ListOptions{Limit: limit, Continue: cont, ResourceVersion: rv}, scheme.ParameterCodec)
			t := time.Now()
			body, err := req.DoRaw(ctx)
			d := time.Since(t)
			if err != nil {
				b.Fatalf("list %q (limit %d): %v", namespace, limit, err)
			}
			total += d
			pages = append(pages, d)
			bytes += len(body)
			pageCount++
			obj, err := runtime.Decode(scheme.Codecs.UniversalDeserializer(), body)
			if err != nil {
				b.Fatal(err)
			}
			l := obj.(*corev1.EventList)
			items += len(l.Items)
			if cont = l.Continue; cont == "" {
				break
			}
		}
		if items != want {
			b.Fatalf("list %q (limit %d) returned %d events, want %d", namespace, limit, items, want)
		}
		lists = append(lists, total)
	}
	m := clk.stop(b)
	b.ReportMetric(0, "ns/op")
	reportLatency(b, "list", lists)
	if limit > 0 && all {
		reportLatency(b, "page", pages)
	}
	b.ReportMetric(float64(bytes)/float64(requests), "B/list")
	b.ReportMetric(float64(pageCount)/float64(requests), "pages/list")
	m.report(b, float64(requests), "list")
}
