package activity

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/eventpipe/eventpipe/internal/activity"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

var columns = []metav1.TableColumnDefinition{
	{Name: "Last Seen", Type: "string", Description: "Time since the event was last observed."},
	{Name: "Summary", Type: "string", Description: "What happened, in words."},
	{Name: "Resource", Type: "string", Description: "The object the activity is about, kind/name."},
	{Name: "Actor", Type: "string", Description: "Who reported the event, or who made the request."},
	{Name: "Source", Type: "string", Description: "What the activity was made from: Event (a Kubernetes Event) or Audit (a request in kube-apiserver's audit log)."},
	{Name: "Count", Type: "integer", Description: "How many times it was observed."},
	{Name: "Name", Type: "string", Format: "name", Priority: 1, Description: "The activity's name (its event's name)."},
	{Name: "Rule", Type: "string", Priority: 1, Description: "The policy/rule that wrote the summary."},
}

// ConvertToTable implements rest.TableConvertor: the columns kubectl prints
// for `kubectl get activities`.
func (r *REST) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	return toTable(obj, r.now())
}

func toTable(obj runtime.Object, now time.Time) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: columns}
	add := func(a *v1alpha1.Activity) {
		last := "<unknown>"
		if !a.Spec.LastSeen.IsZero() {
			last = duration.HumanDuration(now.Sub(a.Spec.LastSeen.Time))
		}
		res := a.Spec.Resource.Kind + "/" + a.Spec.Resource.Name
		if a.Spec.Resource.Kind == "" && a.Spec.Resource.Name == "" {
			res = "<none>"
		}
		source := a.Spec.Origin.Source
		if source == "" {
			source = activity.SourceEvent
		}
		rule := a.Spec.Origin.Policy + "/" + a.Spec.Origin.Rule
		if a.Spec.Origin.Policy == "" {
			rule = "<none>"
		}
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells:  []any{last, a.Spec.Summary, res, a.Spec.Actor.Name, source, int64(a.Spec.Count), a.Name, rule},
			Object: runtime.RawExtension{Object: a},
		})
	}
	switch o := obj.(type) {
	case *v1alpha1.Activity:
		add(o)
		t.ResourceVersion = o.ResourceVersion
	case *v1alpha1.ActivityList:
		for i := range o.Items {
			add(&o.Items[i])
		}
		t.ResourceVersion, t.Continue = o.ResourceVersion, o.Continue
	default:
		return nil, fmt.Errorf("cannot print %T as a table", obj)
	}
	if m, err := meta.ListAccessor(obj); err == nil {
		t.RemainingItemCount = m.GetRemainingItemCount()
	}
	return t, nil
}
