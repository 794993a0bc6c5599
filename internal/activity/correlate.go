package activity

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// How requests are tied to the events they caused: an event about the
// requested object, or about an object it owns by the controllers' naming
// (Deployment web → ReplicaSet web-7d9f → Pod web-7d9f-x2x4q), first seen
// at most CorrelationWindow after the request (or correlationSkew before
// it: the two clocks are kube-apiserver's and the event reporter's), and
// before the next request to the same object: controllers act on the
// latest desired state, so an event's cause is the latest request before
// it on each object it belongs to.
const (
	CorrelationWindow = 5 * time.Minute
	correlationSkew   = 5 * time.Second
	// maxRelated bounds the references one Activity carries.
	maxRelated = 20
)

// RelatedFinder finds candidate activities; the ClickHouse store has it.
type RelatedFinder interface {
	RelatedActivities(ctx context.Context, q chstore.RelatedQuery) ([]chstore.ActivityRow, error)
}

// Correlate fills a's CausedBy (an event's Activity: the requests that
// likely caused it) or Caused (a request's Activity: the events it likely
// caused) from the activities indexed at or below atSeq. A failed or
// forbidden request caused nothing and is tied to nothing.
func Correlate(ctx context.Context, idx RelatedFinder, a *activityv1alpha1.Activity, atSeq uint64) error {
	t := a.Spec.FirstSeen.Time
	if t.IsZero() {
		return nil
	}
	isAudit := a.Spec.Origin.Source == SourceAudit
	if isAudit && a.Spec.Type == "Warning" {
		return nil
	}
	q := chstore.RelatedQuery{Scope: scope.Scope{Type: a.Spec.Tenant.Type, Name: a.Spec.Tenant.Name}, Namespace: a.Namespace,
		Audit: !isAudit, AtSeq: atSeq, Limit: 10 * maxRelated}
	self := chstore.ObjectName{Kind: a.Spec.Resource.Kind, Name: a.Spec.Resource.Name}
	if self.Kind == "" || self.Name == "" {
		return nil
	}
	if isAudit {
		q.From, q.To = t.Add(-correlationSkew), t.Add(CorrelationWindow)
		q.Objects = append([]chstore.ObjectName{self}, descendants(self)...)
	} else {
		q.From, q.To = t.Add(-CorrelationWindow), t.Add(correlationSkew)
		q.Objects = append([]chstore.ObjectName{self}, owners(self)...)
	}
	rows, err := idx.RelatedActivities(ctx, q)
	if err != nil {
		return err
	}
	end := t.Add(CorrelationWindow)
	if isAudit {
		// The next request to the same object ends what this one caused.
		next, err := idx.RelatedActivities(ctx, chstore.RelatedQuery{Scope: q.Scope, Namespace: q.Namespace, Audit: true,
			Objects: []chstore.ObjectName{self}, From: t, To: end, AtSeq: atSeq, Limit: 10 * maxRelated})
		if err != nil {
			return err
		}
		for i := range next {
			b, err := FromRow(&next[i])
			if err != nil {
				return err
			}
			// Activity times are whole seconds: within one, the audit log's
			// order (the records' sequence) tells which came first.
			bt := b.Spec.FirstSeen.Time
			later := bt.After(t) || bt.Equal(t) && sourceSeq(b) > sourceSeq(a)
			if later && bt.Before(end) && b.Spec.Type != "Warning" {
				end = bt
			}
		}
	}
	var refs []activityv1alpha1.ActivityReference
	latest := map[chstore.ObjectName]int{} // per object, the index in refs of its latest request
	for i := range rows {
		b, err := FromRow(&rows[i])
		if err != nil {
			return err
		}
		bt := b.Spec.FirstSeen.Time
		obj := chstore.ObjectName{Kind: b.Spec.Resource.Kind, Name: b.Spec.Resource.Name}
		ref := activityv1alpha1.ActivityReference{Namespace: b.Namespace, Name: b.Name, Summary: b.Spec.Summary, Time: b.Spec.FirstSeen}
		if isAudit {
			if !bt.Before(t.Add(-correlationSkew)) && bt.Before(end) && (obj == self || ownedBy(obj, self)) && len(refs) < maxRelated {
				refs = append(refs, ref)
			}
			continue
		}
		if b.Spec.Type == "Warning" || bt.Before(t.Add(-CorrelationWindow)) || bt.After(t.Add(correlationSkew)) || (obj != self && !ownedBy(self, obj)) {
			continue
		}
		// Rows come oldest first: a later request on the object replaces
		// the earlier one.
		if j, ok := latest[obj]; ok {
			refs[j] = ref
		} else if len(refs) < maxRelated {
			latest[obj] = len(refs)
			refs = append(refs, ref)
		}
	}
	if isAudit {
		a.Spec.Caused = refs
	} else {
		a.Spec.CausedBy = refs
	}
	return nil
}

// sourceSeq is the position of what an Activity was made from in its log.
func sourceSeq(a *activityv1alpha1.Activity) uint64 {
	n, _ := strconv.ParseUint(a.Spec.Origin.EventResourceVersion, 10, 64)
	return n
}

// trimLast cuts the last -segment of a generated name (a ReplicaSet's
// pod-template hash, a Pod's random suffix or ordinal, a Job's schedule
// time); "" when there is none.
func trimLast(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return ""
	}
	return name[:i]
}

// owners are the objects that may own o, by the built-in controllers'
// naming.
func owners(o chstore.ObjectName) []chstore.ObjectName {
	var out []chstore.ObjectName
	add := func(kind, name string) {
		if name != "" {
			out = append(out, chstore.ObjectName{Kind: kind, Name: name})
		}
	}
	switch o.Kind {
	case "ReplicaSet":
		add("Deployment", trimLast(o.Name))
	case "Pod":
		parent := trimLast(o.Name)
		add("ReplicaSet", parent)
		add("StatefulSet", parent)
		add("DaemonSet", parent)
		add("Job", parent)
		add("Deployment", trimLast(parent))
		add("CronJob", trimLast(parent))
	case "Job":
		add("CronJob", trimLast(o.Name))
	}
	return out
}

// ownedBy reports whether child may be owned by parent.
func ownedBy(child, parent chstore.ObjectName) bool {
	for _, o := range owners(child) {
		if o == parent {
			return true
		}
	}
	return false
}

// descendants are the name prefixes of the objects o's controller makes;
// ownedBy then checks each candidate exactly.
func descendants(o chstore.ObjectName) []chstore.ObjectName {
	prefix := func(kind string) chstore.ObjectName {
		return chstore.ObjectName{Kind: kind, Name: o.Name + "-", Prefix: true}
	}
	switch o.Kind {
	case "Deployment":
		return []chstore.ObjectName{prefix("ReplicaSet"), prefix("Pod")}
	case "CronJob":
		return []chstore.ObjectName{prefix("Job"), prefix("Pod")}
	case "ReplicaSet", "StatefulSet", "DaemonSet", "Job":
		return []chstore.ObjectName{prefix("Pod")}
	}
	return nil
}
