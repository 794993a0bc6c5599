package jscluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// reader follows ns as a reflector does, by hand so that it can check
// every step: a list, then a watch from its resourceVersion, resumed from
// the last resourceVersion seen when it closes, and a relist when the
// server answers 410 Gone. The resourceVersions it sees must only grow.
type reader struct {
	cs kubernetes.Interface
	ns string

	mu         sync.Mutex
	state      map[string]uint64 // name -> resourceVersion
	last       uint64
	events     int
	resumes    int
	relists    int
	violations []string
}

func newReader(cs kubernetes.Interface, ns string) *reader {
	return &reader{cs: cs, ns: ns, state: map[string]uint64{}}
}

func (r *reader) violation(format string, args ...any) {
	if len(r.violations) < 20 {
		r.violations = append(r.violations, fmt.Sprintf(format, args...))
	}
}

// run follows ns until ctx ends.
func (r *reader) run(ctx context.Context) {
	rv := ""
	for ctx.Err() == nil {
		if rv == "" {
			var err error
			if rv, err = r.relist(ctx); err != nil {
				rv = ""
				retrySleep(ctx)
				continue
			}
		}
		w, err := r.cs.CoreV1().Events(r.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				rv = ""
			}
			retrySleep(ctx)
			continue
		}
		rv = r.follow(w, rv)
		w.Stop()
		if rv != "" {
			r.mu.Lock()
			r.resumes++
			r.mu.Unlock()
		}
	}
}

// follow reads w until it closes and returns where to resume, "" to relist.
func (r *reader) follow(w watch.Interface, rv string) string {
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Error:
			if err := apierrors.FromObject(ev.Object); apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				return ""
			}
			return rv
		case watch.Bookmark:
			if m, err := metaRV(ev.Object); err == nil {
				r.mu.Lock()
				if m < r.last {
					r.violation("bookmark %d after %d", m, r.last)
				}
				r.mu.Unlock()
				rv = strconv.FormatUint(m, 10)
			}
			continue
		}
		e, ok := ev.Object.(*corev1.Event)
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(e.ResourceVersion, 10, 64)
		r.mu.Lock()
		switch {
		case err != nil:
			r.violation("%s %s: resourceVersion %q", ev.Type, e.Name, e.ResourceVersion)
		case seq <= r.last:
			r.violation("%s %s at %d after %d: not strictly increasing", ev.Type, e.Name, seq, r.last)
		default:
			r.last = seq
		}
		r.events++
		if ev.Type == watch.Deleted {
			delete(r.state, e.Name)
		} else {
			r.state[e.Name] = seq
		}
		r.mu.Unlock()
		rv = e.ResourceVersion
	}
	return rv
}

// relist replaces the state with a consistent list and returns its
// resourceVersion, which must not be older than anything seen.
func (r *reader) relist(ctx context.Context) (string, error) {
	list, err := r.cs.CoreV1().Events(r.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	seq, err := strconv.ParseUint(list.ResourceVersion, 10, 64)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < r.last {
		r.violation("list at %d after %d", seq, r.last)
	}
	r.last = max(r.last, seq)
	r.relists++
	r.state = map[string]uint64{}
	for _, e := range list.Items {
		s, _ := strconv.ParseUint(e.ResourceVersion, 10, 64)
		r.state[e.Name] = s
	}
	return list.ResourceVersion, nil
}

func metaRV(o any) (uint64, error) {
	m, ok := o.(metav1.Object)
	if !ok {
		return 0, fmt.Errorf("%T has no metadata", o)
	}
	return strconv.ParseUint(m.GetResourceVersion(), 10, 64)
}

func retrySleep(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(100 * time.Millisecond):
	}
}

// snapshot returns a copy of the state and the last resourceVersion.
func (r *reader) snapshot() (map[string]uint64, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.state))
	for k, v := range r.state {
		out[k] = v
	}
	return out, r.last
}
