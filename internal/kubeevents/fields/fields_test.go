package fields

import (
	"errors"
	"net/http"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kfields "k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/selection"
)

// The vocabularies below are kube-apiserver 1.37's: core/v1 from
// AddFieldLabelConversionsForEvent in pkg/apis/core/v1/conversion.go,
// events.k8s.io/v1 from the one in pkg/apis/events/v1/conversion.go, the
// canonical set from ToSelectableFields in pkg/registry/core/event/strategy.go.

var wantCanonical = []string{
	"metadata.name",
	"metadata.namespace",
	"involvedObject.kind",
	"involvedObject.namespace",
	"involvedObject.name",
	"involvedObject.uid",
	"involvedObject.apiVersion",
	"involvedObject.resourceVersion",
	"involvedObject.fieldPath",
	"reason",
	"reportingComponent",
	"source",
	"type",
}

// wantEventsMapping is events.k8s.io/v1 label -> canonical label.
var wantEventsMapping = map[string]string{
	"metadata.name":             "metadata.name",
	"metadata.namespace":        "metadata.namespace",
	"regarding.kind":            "involvedObject.kind",
	"regarding.namespace":       "involvedObject.namespace",
	"regarding.name":            "involvedObject.name",
	"regarding.uid":             "involvedObject.uid",
	"regarding.apiVersion":      "involvedObject.apiVersion",
	"regarding.resourceVersion": "involvedObject.resourceVersion",
	"regarding.fieldPath":       "involvedObject.fieldPath",
	"reason":                    "reason",
	"reportingController":       "reportingComponent",
	"type":                      "type",
}

func TestVocabulary(t *testing.T) {
	var got []string
	for _, f := range Canonical() {
		got = append(got, f.Label)
		require.NotNil(t, f.Value, f.Label)
		lf, ok := Lookup(f.Label)
		require.True(t, ok)
		require.Equal(t, f.Label, lf.Label)
	}
	require.Equal(t, wantCanonical, got)

	_, ok := Lookup("regarding.kind")
	require.False(t, ok, "only canonical labels are looked up")

	core, err := Labels(GroupCore)
	require.NoError(t, err)
	require.Equal(t, wantCanonical, core, "core/v1 accepts exactly the canonical labels")

	events, err := Labels(GroupEvents)
	require.NoError(t, err)
	require.Len(t, events, len(wantEventsMapping))
	for _, l := range events {
		require.Contains(t, wantEventsMapping, l)
	}

	_, err = Labels("events.k8s.io/v1")
	require.ErrorIs(t, err, ErrUnknownGroup)

	// Canonical hands out a copy.
	c := Canonical()
	c[0].Label = "mutated"
	require.Equal(t, "metadata.name", Canonical()[0].Label)
}

func TestConvertFieldLabel(t *testing.T) {
	type row struct {
		group, label string
		want         string // canonical label; "" means rejected
	}
	var rows []row
	for _, l := range wantCanonical {
		rows = append(rows, row{GroupCore, l, l})
	}
	for l, c := range wantEventsMapping {
		rows = append(rows, row{GroupEvents, l, c})
	}
	rejected := []row{
		// Each group's spelling is refused by the other.
		{GroupCore, "regarding.kind", ""},
		{GroupCore, "regarding.name", ""},
		{GroupCore, "reportingController", ""},
		{GroupEvents, "involvedObject.kind", ""},
		{GroupEvents, "involvedObject.name", ""},
		{GroupEvents, "reportingComponent", ""},
		// events.k8s.io/v1 has no label for the source.
		{GroupEvents, "source", ""},
		{GroupEvents, "deprecatedSource", ""},
		{GroupEvents, "deprecatedSource.component", ""},
		// Fields that exist but are not selectable in either group.
		{GroupCore, "message", ""},
		{GroupEvents, "note", ""},
		{GroupCore, "metadata.uid", ""},
		{GroupEvents, "metadata.uid", ""},
		{GroupCore, "source.component", ""},
		{GroupCore, "count", ""},
		{GroupCore, "action", ""},
		{GroupEvents, "action", ""},
		{GroupEvents, "reportingInstance", ""},
		{GroupCore, "involvedObject", ""},
		// Case matters, and so does surrounding space.
		{GroupCore, "Reason", ""},
		{GroupEvents, "Regarding.Kind", ""},
		{GroupCore, " reason", ""},
		{GroupCore, "", ""},
		{GroupEvents, "", ""},
	}
	rows = append(rows, rejected...)

	for _, r := range rows {
		t.Run(r.group+"/"+r.label, func(t *testing.T) {
			gotLabel, gotValue, err := ConvertFieldLabel(r.group, r.label, "v=1,x")
			if r.want == "" {
				require.EqualError(t, err, "field label not supported: "+r.label)
				var ule *UnsupportedLabelError
				require.ErrorAs(t, err, &ule)
				require.Equal(t, r.label, ule.Label)
				require.Empty(t, gotLabel)
				require.Empty(t, gotValue)
				return
			}
			require.NoError(t, err)
			require.Equal(t, r.want, gotLabel)
			require.Equal(t, "v=1,x", gotValue, "values pass through untouched")
		})
	}

	t.Run("unknown group", func(t *testing.T) {
		for _, g := range []string{"core", "v1", "events.k8s.io/v1", "events", "apps"} {
			_, _, err := ConvertFieldLabel(g, "reason", "x")
			require.ErrorIs(t, err, ErrUnknownGroup, g)
		}
	})
}

// legacyEvent has every canonical field set to a distinct value.
func legacyEvent() *corev1.Event {
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1.17f0a", Namespace: "shop", UID: "ev-uid"},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", Namespace: "shop-objs", Name: "web-1", UID: "pod-uid",
			APIVersion: "v1", ResourceVersion: "4711", FieldPath: "spec.containers{web}",
		},
		Reason:              "BackOff",
		Message:             "Back-off restarting failed container",
		Source:              corev1.EventSource{Component: "kubelet", Host: "node-3"},
		Count:               5,
		Type:                corev1.EventTypeWarning,
		ReportingController: "kubernetes.io/kubelet",
		ReportingInstance:   "node-3",
	}
}

func TestFields(t *testing.T) {
	t.Run("legacy event", func(t *testing.T) {
		require.Equal(t, kfields.Set{
			"metadata.name":                  "web-1.17f0a",
			"metadata.namespace":             "shop",
			"involvedObject.kind":            "Pod",
			"involvedObject.namespace":       "shop-objs",
			"involvedObject.name":            "web-1",
			"involvedObject.uid":             "pod-uid",
			"involvedObject.apiVersion":      "v1",
			"involvedObject.resourceVersion": "4711",
			"involvedObject.fieldPath":       "spec.containers{web}",
			"reason":                         "BackOff",
			"reportingComponent":             "kubernetes.io/kubelet",
			"source":                         "kubelet",
			"type":                           "Warning",
		}, Fields(legacyEvent()))
	})

	t.Run("source falls back to reportingController", func(t *testing.T) {
		ev := legacyEvent()
		ev.Source = corev1.EventSource{Host: "node-3"} // no component
		set := Fields(ev)
		require.Equal(t, "kubernetes.io/kubelet", set["source"])
		require.Equal(t, "kubernetes.io/kubelet", set["reportingComponent"])
	})

	t.Run("empty event has every label, empty", func(t *testing.T) {
		for _, ev := range []*corev1.Event{{}, nil} {
			set := Fields(ev)
			require.Len(t, set, len(wantCanonical))
			for _, l := range wantCanonical {
				v, ok := set[l]
				require.True(t, ok, l)
				require.Empty(t, v, l)
			}
		}
	})

	t.Run("accessors agree with Fields", func(t *testing.T) {
		ev := legacyEvent()
		set := Fields(ev)
		for _, f := range Canonical() {
			require.Equal(t, set[f.Label], f.Value(ev), f.Label)
		}
	})
}

// requireBadRequest checks that err is what kube-apiserver's list handler
// sends: a 400 BadRequest Status carrying msg.
func requireBadRequest(t *testing.T, err error, msg string) {
	t.Helper()
	var se *apierrors.StatusError
	require.ErrorAs(t, err, &se)
	require.True(t, apierrors.IsBadRequest(err))
	st := se.Status()
	require.Equal(t, int32(http.StatusBadRequest), st.Code)
	require.Equal(t, metav1.StatusReasonBadRequest, st.Reason)
	require.Equal(t, metav1.StatusFailure, st.Status)
	require.Equal(t, msg, st.Message)
	require.Equal(t, msg, err.Error())
}

func TestParseSelectorEveryField(t *testing.T) {
	ev := legacyEvent()
	set := Fields(ev)
	external := map[string]map[string]string{GroupCore: {}, GroupEvents: wantEventsMapping}
	for _, l := range wantCanonical {
		external[GroupCore][l] = l
	}

	for group, mapping := range external {
		for label, canon := range mapping {
			value := set[canon]
			for _, op := range []string{"=", "==", "!="} {
				t.Run(group+"/"+label+op, func(t *testing.T) {
					sel, err := ParseSelector(group, label+op+kfields.EscapeValue(value))
					require.NoError(t, err)

					reqs := sel.Requirements()
					require.Len(t, reqs, 1)
					require.Equal(t, canon, reqs[0].Field)
					require.Equal(t, value, reqs[0].Value)
					wantOp := selection.Equals
					if op == "!=" {
						wantOp = selection.NotEquals
					}
					require.Equal(t, wantOp, reqs[0].Operator)

					matches := op != "!="
					require.Equal(t, matches, sel.Matches(set))
					other := Fields(&corev1.Event{})
					require.Equal(t, !matches, sel.Matches(other))
				})
			}
		}
	}
}

func TestParseSelectorGroupsAgree(t *testing.T) {
	pairs := []struct{ core, events string }{
		{"involvedObject.name=web-1", "regarding.name=web-1"},
		{"involvedObject.kind=Pod,involvedObject.namespace=shop-objs", "regarding.kind=Pod,regarding.namespace=shop-objs"},
		{"involvedObject.uid!=x,reason==BackOff", "regarding.uid!=x,reason==BackOff"},
		{"reportingComponent=kubernetes.io/kubelet", "reportingController=kubernetes.io/kubelet"},
		{"metadata.name=web-1.17f0a,metadata.namespace=shop,type=Warning", "type=Warning,metadata.namespace=shop,metadata.name=web-1.17f0a"},
		{"involvedObject.fieldPath=spec.containers{web},involvedObject.apiVersion=v1,involvedObject.resourceVersion=4711",
			"regarding.fieldPath=spec.containers{web},regarding.apiVersion=v1,regarding.resourceVersion=4711"},
	}
	set := Fields(legacyEvent())
	for _, p := range pairs {
		t.Run(p.core, func(t *testing.T) {
			c, err := ParseSelector(GroupCore, p.core)
			require.NoError(t, err)
			e, err := ParseSelector(GroupEvents, p.events)
			require.NoError(t, err)
			require.Equal(t, sortedReqs(c), sortedReqs(e))
			require.Equal(t, c.Matches(set), e.Matches(set))
		})
	}
}

func sortedReqs(sel kfields.Selector) kfields.Requirements {
	reqs := sel.Requirements()
	sort.Slice(reqs, func(i, j int) bool {
		a, b := reqs[i], reqs[j]
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		if a.Operator != b.Operator {
			return a.Operator < b.Operator
		}
		return a.Value < b.Value
	})
	return reqs
}

func TestParseSelector(t *testing.T) {
	ev := legacyEvent()
	set := Fields(ev)

	tests := []struct {
		name, group, sel string
		wantErr          string // exact Status message of a 400
		wantString       string // canonical selector, when it parses
		matches          bool
	}{
		{name: "empty selects all", group: GroupCore, sel: "", wantString: "", matches: true},
		{name: "empty selects all events group", group: GroupEvents, sel: "", wantString: "", matches: true},
		{name: "stray commas", group: GroupCore, sel: ",reason=BackOff,,", wantString: "reason=BackOff", matches: true},
		{name: "kubectl events --for", group: GroupCore,
			sel:        "involvedObject.kind=Pod,involvedObject.name=web-1",
			wantString: "involvedObject.kind=Pod,involvedObject.name=web-1", matches: true},
		{name: "regarding rewritten", group: GroupEvents,
			sel:        "regarding.name=web-1,regarding.kind=Pod",
			wantString: "involvedObject.kind=Pod,involvedObject.name=web-1", matches: true},
		{name: "double equals", group: GroupCore, sel: "type==Warning", wantString: "type=Warning", matches: true},
		{name: "not equal", group: GroupCore, sel: "type!=Normal", wantString: "type!=Normal", matches: true},
		{name: "not equal excludes", group: GroupEvents, sel: "type!=Warning", wantString: "type!=Warning", matches: false},
		{name: "empty value", group: GroupCore, sel: "involvedObject.fieldPath=", wantString: "involvedObject.fieldPath=", matches: false},
		{name: "not empty value", group: GroupEvents, sel: "regarding.fieldPath!=", wantString: "involvedObject.fieldPath!=", matches: true},
		{name: "escaped value", group: GroupCore, sel: `reason=a\,b\=c\\d`, wantString: `reason=a\,b\=c\\d`, matches: false},
		{name: "source fallback label", group: GroupCore, sel: "source=kubelet", wantString: "source=kubelet", matches: true},
		{name: "conjunction fails on one term", group: GroupCore, sel: "reason=BackOff,type=Normal", wantString: "reason=BackOff,type=Normal", matches: false},

		// Unsupported labels: kube's field label conversion text.
		{name: "unknown label", group: GroupCore, sel: "spec.foo=bar", wantErr: "field label not supported: spec.foo"},
		{name: "regarding on core", group: GroupCore, sel: "regarding.name=web-1", wantErr: "field label not supported: regarding.name"},
		{name: "involvedObject on events", group: GroupEvents, sel: "involvedObject.name=web-1", wantErr: "field label not supported: involvedObject.name"},
		{name: "source on events", group: GroupEvents, sel: "source=kubelet", wantErr: "field label not supported: source"},
		{name: "reportingComponent on events", group: GroupEvents, sel: "reportingComponent=x", wantErr: "field label not supported: reportingComponent"},
		{name: "reportingController on core", group: GroupCore, sel: "reportingController=x", wantErr: "field label not supported: reportingController"},
		{name: "empty label", group: GroupCore, sel: "=x", wantErr: "field label not supported: "},
		{name: "empty label with others", group: GroupEvents, sel: "reason=x,=y", wantErr: "field label not supported: "},
		{name: "first bad label in sorted order is named", group: GroupCore, sel: "zzz=1,reason=x,aaa=2", wantErr: "field label not supported: aaa"},
		{name: "sorting is by whole term", group: GroupCore, sel: "b!=1,b=2,a.b=3", wantErr: "field label not supported: a.b"},

		// Malformed selectors: the parser's text, untouched.
		{name: "no operator", group: GroupCore, sel: "foo", wantErr: "invalid selector: 'foo'; can't understand 'foo'"},
		{name: "no operator in second term", group: GroupEvents, sel: "reason=x,foo",
			wantErr: "invalid selector: 'reason=x,foo'; can't understand 'foo'"},
		{name: "label selector syntax", group: GroupCore, sel: "type in (Warning)",
			wantErr: "invalid selector: 'type in (Warning)'; can't understand 'type in (Warning)'"},
		{name: "unescaped equals", group: GroupCore, sel: "reason=a=b",
			wantErr: "invalid field selector: unescaped character in value: 61"},
		{name: "unknown escape", group: GroupCore, sel: `reason=\x`,
			wantErr: `invalid field selector: invalid escape sequence: \x`},
		{name: "trailing backslash", group: GroupEvents, sel: `reason=a\`,
			wantErr: `invalid field selector: invalid escape sequence: \`},
		{name: "malformed wins over unsupported", group: GroupCore, sel: "nope=1,foo",
			wantErr: "invalid selector: 'nope=1,foo'; can't understand 'foo'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := ParseSelector(tc.group, tc.sel)
			if tc.wantErr != "" {
				require.Nil(t, sel)
				requireBadRequest(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantString, sel.String())
			require.Equal(t, tc.matches, sel.Matches(set))
		})
	}

	t.Run("unknown group is not the client's fault", func(t *testing.T) {
		_, err := ParseSelector("apps", "reason=x")
		require.ErrorIs(t, err, ErrUnknownGroup)
		require.False(t, apierrors.IsBadRequest(err))
		_, err = ParseSelector("apps", "")
		require.ErrorIs(t, err, ErrUnknownGroup)
	})
}

// FuzzParseSelector checks that no input panics, that every error is a 400
// with kube's text, and that whatever parses uses only canonical labels the
// group accepts and reparses to the same requirements as a core/v1 selector.
func FuzzParseSelector(f *testing.F) {
	seeds := []string{
		"", "reason=BackOff", "involvedObject.name=web-1,involvedObject.kind=Pod",
		"regarding.name=web-1", "reportingController=kubelet", "type!=Normal",
		"type==Warning", "source=kubelet", `reason=a\,b\=c\\d`, "foo", "=", "==",
		"!=", "a=b=c", `a=\`, `a=\x`, ",,,", "x in (a)", "metadata.name!=,metadata.namespace=",
		"reason=\xff", "reason=\xff,", "type=\u00e9\\,",
	}
	for _, s := range seeds {
		f.Add(uint8(0), s)
		f.Add(uint8(1), s)
	}
	groups := []string{GroupCore, GroupEvents}
	f.Fuzz(func(t *testing.T, g uint8, s string) {
		group := groups[int(g)%len(groups)]
		sel, err := ParseSelector(group, s)
		if err != nil {
			require.Nil(t, sel)
			var se *apierrors.StatusError
			if !errors.As(err, &se) || se.Status().Code != http.StatusBadRequest || se.Status().Message != err.Error() {
				t.Fatalf("ParseSelector(%q, %q): error is not a 400 Status: %#v", group, s, err)
			}
			return
		}
		reqs := sel.Requirements()
		for _, r := range reqs {
			if _, ok := Lookup(r.Field); !ok {
				t.Fatalf("ParseSelector(%q, %q): non-canonical label %q", group, s, r.Field)
			}
			if group == GroupEvents && r.Field == LabelSource {
				t.Fatalf("ParseSelector(%q, %q): events.k8s.io has no source label", group, s)
			}
			if r.Operator != selection.Equals && r.Operator != selection.NotEquals {
				t.Fatalf("ParseSelector(%q, %q): operator %q", group, s, r.Operator)
			}
		}
		sel.Matches(Fields(legacyEvent()))
		sel.Matches(Fields(nil))

		// A canonical selector is a valid core/v1 selector with the same
		// meaning, so storage may log or cache it as a string.
		again, err := ParseSelector(GroupCore, sel.String())
		if err != nil {
			t.Fatalf("reparse %q (from %q): %v", sel.String(), s, err)
		}
		require.Equal(t, sortedReqs(sel), sortedReqs(again))
	})
}
