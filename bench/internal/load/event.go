// Package load is the create load of the API benchmarks (bench/apiserver,
// bench/etcd): kubelet-style core/v1 Events, a load client that sends them
// one request at a time per worker as client-go does, and its latencies.
package load

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// NamespaceCount is how many namespaces the events are spread over.
const NamespaceCount = 20

// Namespaces are the namespaces the events are spread over, bench-00 to
// bench-19.
func Namespaces() []string {
	out := make([]string, NamespaceCount)
	for i := range out {
		out[i] = fmt.Sprintf("bench-%02d", i)
	}
	return out
}

// Annotations every benchmark event carries: when the client sent it, and
// its number in the run (for counting watch deliveries).
const (
	AnnSent = "bench.eventpipe.io/sent-unix-nano"
	AnnSeq  = "bench.eventpipe.io/seq"
)

// EventFactory makes kubelet-style core/v1 Events, about 1 KB as JSON,
// named as kubelet names them (<pod>.<hex>), each name unique.
type EventFactory struct {
	// Nonce is part of every event name, unique to the factory.
	Nonce uint64
	n     atomic.Uint64
	ns    []string
	pods  [][]podInfo
	nodes []string
}

type podInfo struct {
	name, uid, rv, image, node, ip string
}

// NewEventFactory returns a factory of events 0, 1, ... over Namespaces.
func NewEventFactory() *EventFactory {
	r := rand.New(rand.NewPCG(1, 2))
	f := &EventFactory{Nonce: uint64(time.Now().UnixNano()), ns: Namespaces()}
	for i := range 40 {
		f.nodes = append(f.nodes, fmt.Sprintf("ip-10-%d-%d-%d.eu-west-1.compute.internal", r.IntN(4), r.IntN(256), r.IntN(256)+i))
	}
	apps := []string{"checkout", "payments-api", "web-frontend", "inventory-worker", "search-indexer", "auth-gateway", "notifications", "reporting-batch"}
	const alnum = "bcdfghjklmnpqrstvwxz2456789"
	rnd := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alnum[r.IntN(len(alnum))]
		}
		return string(b)
	}
	for range f.ns {
		var pods []podInfo
		for range 50 {
			app := apps[r.IntN(len(apps))]
			pods = append(pods, podInfo{
				name:  fmt.Sprintf("%s-%s-%s", app, rnd(10), rnd(5)),
				uid:   fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff),
				rv:    strconv.Itoa(100000 + r.IntN(900000)),
				image: fmt.Sprintf("registry.example.com/platform/%s:v1.%d.%d", app, r.IntN(40), r.IntN(20)),
				node:  f.nodes[r.IntN(len(f.nodes))],
				ip:    fmt.Sprintf("10.244.%d.%d", r.IntN(256), r.IntN(256)),
			})
		}
		f.pods = append(f.pods, pods)
	}
	return f
}

// Next returns event number i of the run (0, 1, ...) in namespace
// i mod namespaceCount, stamped with the current time.
func (f *EventFactory) Next() (*corev1.Event, uint64) {
	i := f.n.Add(1) - 1
	nsIdx := int(i % uint64(len(f.ns)))
	ns := f.ns[nsIdx]
	p := f.pods[nsIdx][int(i/uint64(len(f.ns)))%len(f.pods[nsIdx])]
	container := p.name[:len(p.name)-17] // the app
	now := time.Now()
	reason, msg, typ := kubeletMessage(i, p, container)
	ts := metav1.NewTime(now.Truncate(time.Second))
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", p.name, f.Nonce+i),
			Namespace: ns,
			Annotations: map[string]string{
				AnnSent: strconv.FormatInt(now.UnixNano(), 10),
				AnnSeq:  strconv.FormatUint(i, 10),
			},
		},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", Namespace: ns, Name: p.name, UID: types.UID(p.uid), APIVersion: "v1",
			ResourceVersion: p.rv, FieldPath: "spec.containers{" + container + "}",
		},
		Reason: reason, Message: msg, Type: typ,
		Source:         corev1.EventSource{Component: "kubelet", Host: p.node},
		FirstTimestamp: ts, LastTimestamp: ts, Count: 1,
		ReportingController: "kubelet", ReportingInstance: p.node,
	}, i
}

// Stamp sets the send time to now, right before the request goes out.
func Stamp(ev *corev1.Event) {
	ev.Annotations[AnnSent] = strconv.FormatInt(time.Now().UnixNano(), 10)
}

func kubeletMessage(i uint64, p podInfo, container string) (reason, msg, typ string) {
	switch i % 8 {
	case 0:
		return "Pulling", fmt.Sprintf("Pulling image %q", p.image), corev1.EventTypeNormal
	case 1:
		return "Pulled", fmt.Sprintf("Successfully pulled image %q in 2.431s (2.431s including waiting). Image size: 48213342 bytes.", p.image), corev1.EventTypeNormal
	case 2:
		return "Created", "Created container: " + container, corev1.EventTypeNormal
	case 3:
		return "Started", "Started container " + container, corev1.EventTypeNormal
	case 4:
		return "Unhealthy", fmt.Sprintf("Readiness probe failed: Get \"http://%s:8080/healthz/ready\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)", p.ip), corev1.EventTypeWarning
	case 5:
		return "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", container, p.name, "ns", p.uid), corev1.EventTypeWarning
	case 6:
		return "Failed", fmt.Sprintf("Failed to pull image %q: rpc error: code = NotFound desc = failed to pull and unpack image %q: failed to resolve reference %q: %s: not found", p.image, p.image, p.image, p.image), corev1.EventTypeWarning
	default:
		return "Killing", fmt.Sprintf("Stopping container %s", container), corev1.EventTypeNormal
	}
}

// JSONSize is the size of obj as JSON.
func JSONSize(obj any) int {
	b, _ := json.Marshal(obj)
	return len(b)
}
