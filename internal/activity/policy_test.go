package activity

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

var customSpec = activityv1alpha1.ActivityPolicySpec{
	Resource:   activityv1alpha1.ActivityPolicyResource{Kind: "Pod"},
	EventRules: []activityv1alpha1.ActivityPolicyRule{{Name: "all", Match: "true", Summary: "custom: {{ link(regarding.name, regarding) }}"}},
}

func TestCompileErrors(t *testing.T) {
	rule := func(name, match, summary string) activityv1alpha1.ActivityPolicyRule {
		return activityv1alpha1.ActivityPolicyRule{Name: name, Match: match, Summary: summary}
	}
	cases := []struct {
		name  string
		rules []activityv1alpha1.ActivityPolicyRule
		kind  string
		want  []string
	}{
		{name: "ok", rules: []activityv1alpha1.ActivityPolicyRule{rule("a", "true", "x {{ regarding.name }}")}, kind: "Pod"},
		{name: "no rules", kind: "Pod", want: []string{"spec.eventRules: Required value"}},
		{name: "no kind", rules: []activityv1alpha1.ActivityPolicyRule{rule("a", "true", "x")}, want: []string{"spec.resource.kind: Required value"}},
		{name: "bad name and duplicate", kind: "Pod", rules: []activityv1alpha1.ActivityPolicyRule{rule("A_b", "true", "x"), rule("a", "true", "x"), rule("a", "true", "x")},
			want: []string{`spec.eventRules[0].name: Invalid value: "A_b"`, `spec.eventRules[2].name: Duplicate value: "a"`}},
		{name: "undeclared", kind: "Pod", rules: []activityv1alpha1.ActivityPolicyRule{rule("a", "evnt.reason == 'x'", "x")},
			want: []string{"spec.eventRules[0].match: Invalid value: \"evnt.reason == 'x'\": column 1: undeclared reference to 'evnt'", "(variables: event, regarding, related, actor, count, kind, namespace"}},
		{name: "not bool", kind: "Pod", rules: []activityv1alpha1.ActivityPolicyRule{rule("a", "count + 1", "x")},
			want: []string{"spec.eventRules[0].match: Invalid value: \"count + 1\": must return bool, returns int"}},
		{name: "template column", kind: "Pod", rules: []activityv1alpha1.ActivityPolicyRule{rule("a", "true", "Pod {{ regarding.name }} on {{ nod }}")},
			want: []string{"spec.eventRules[0].summary", "column 32: undeclared reference to 'nod'"}},
		{name: "unbalanced", kind: "Pod", rules: []activityv1alpha1.ActivityPolicyRule{rule("a", "true", "Pod {{ regarding.name ")},
			want: []string{"spec.eventRules[0].summary", "column 5: {{ is not closed by }}"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &activityv1alpha1.ActivityPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p"},
				Spec: activityv1alpha1.ActivityPolicySpec{Resource: activityv1alpha1.ActivityPolicyResource{Kind: c.kind}, EventRules: c.rules}}
			_, errs := Compile(p)
			if len(c.want) == 0 {
				require.Empty(t, errs)
				return
			}
			require.NotEmpty(t, errs)
			for _, w := range c.want {
				require.Contains(t, errs.ToAggregate().Error(), w)
			}
		})
	}
}

func TestLinksAndOrder(t *testing.T) {
	user := &activityv1alpha1.ActivityPolicy{ObjectMeta: metav1.ObjectMeta{Name: "zz-user"}, Spec: customSpec}
	builtin := &activityv1alpha1.ActivityPolicy{ObjectMeta: metav1.ObjectMeta{Name: "aa-builtin", Labels: map[string]string{LabelBuiltin: "true"}},
		Spec: activityv1alpha1.ActivityPolicySpec{Resource: activityv1alpha1.ActivityPolicyResource{Kind: "Pod"},
			EventRules: []activityv1alpha1.ActivityPolicyRule{{Name: "b", Match: "true", Summary: "builtin"}}}}
	any := &activityv1alpha1.ActivityPolicy{ObjectMeta: metav1.ObjectMeta{Name: "a-any"},
		Spec: activityv1alpha1.ActivityPolicySpec{Resource: activityv1alpha1.ActivityPolicyResource{APIGroup: "*", Kind: "*"},
			EventRules: []activityv1alpha1.ActivityPolicyRule{{Name: "c", Match: "event.reason == 'X'", Summary: "{{ 1/0 }}"}, {Name: "d", Match: "true", Summary: "any"}}}}
	var ps []*Policy
	for _, p := range []*activityv1alpha1.ActivityPolicy{user, builtin, any} {
		cp, errs := Compile(p)
		require.Empty(t, errs)
		ps = append(ps, cp)
	}
	set := NewSet(ps)
	ev := &corev1.Event{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-1", Namespace: "prod", APIVersion: "v1"}, Reason: "X"}
	o := set.Evaluate(ev)
	require.Equal(t, "zz-user", o.Policy, "user policies come before built-in ones, exact kinds before wildcards")
	require.Equal(t, "custom: web-1", o.Summary)
	require.Len(t, o.Links, 1)
	require.Equal(t, "web-1", o.Links[0].Marker)
	require.Equal(t, "Pod", o.Links[0].Resource.Kind)

	ev.InvolvedObject.Kind = "Certificate"
	o = set.Evaluate(ev)
	require.Equal(t, "any", o.Summary, "a failing rule is skipped and reported")
	require.Len(t, o.Errors, 1)
	require.Equal(t, "c", o.Errors[0].Rule)
	require.ErrorContains(t, o.Errors[0].Err, "division by zero")
}
