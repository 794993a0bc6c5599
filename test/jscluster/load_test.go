package jscluster

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// load creates events in ns at about rate a second from several workers,
// until stopped, and records each acknowledged create's resourceVersion,
// each failure's time, and each create's latency.
type load struct {
	start time.Time
	stop  chan struct{}
	done  chan struct{}

	mu        sync.Mutex
	created   map[string]uint64 // name -> resourceVersion of its acknowledged create
	failed    []time.Time
	lastErr   error
	latencies []time.Duration // of acknowledged creates
}

func startLoad(cs kubernetes.Interface, ns string, rate int) *load {
	const workers = 64
	start := time.Now()
	l := &load{start: start, stop: make(chan struct{}), done: make(chan struct{}), created: map[string]uint64{}}
	var wg sync.WaitGroup
	every := time.Duration(workers) * time.Second / time.Duration(rate)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				// Paced against the start, so a slow create does not lower
				// the rate the others keep.
				at := start.Add(time.Duration(i)*every + time.Duration(w)*every/workers)
				select {
				case <-time.After(time.Until(at)):
				case <-l.stop:
					return
				}
				name := fmt.Sprintf("load.%02d.%06d", w, i)
				now := metav1.NewTime(time.Now())
				began := time.Now()
				ev, err := cs.CoreV1().Events(ns).Create(context.Background(), &corev1.Event{
					ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name},
					InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-1"},
					Reason:         "Started", Type: corev1.EventTypeNormal, FirstTimestamp: now, LastTimestamp: now, Count: 1,
				}, metav1.CreateOptions{})
				took := time.Since(began)
				var rv uint64
				if err == nil {
					rv, err = strconv.ParseUint(ev.ResourceVersion, 10, 64)
				}
				l.mu.Lock()
				if err != nil {
					l.failed = append(l.failed, time.Now())
					l.lastErr = err
				} else {
					l.created[name] = rv
					l.latencies = append(l.latencies, took)
				}
				l.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

// end stops the load and waits for the creates in flight.
func (l *load) end() {
	close(l.stop)
	<-l.done
}

// failuresSince counts the failed creates after t.
func (l *load) failuresSince(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.failed {
		if at.After(t) {
			n++
		}
	}
	return n
}

// percentile of the acknowledged creates' latencies, p in [0, 1].
func (l *load) percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.latencies) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), l.latencies...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}
