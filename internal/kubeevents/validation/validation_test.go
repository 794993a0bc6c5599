package validation

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The expected texts below are what kube-apiserver 1.37 reports for the
// same objects (checked against k8s.io/kubernetes' own ValidateEventCreate,
// ValidateEventUpdate, rest.ValidateCreate and rest.ValidateUpdate).

var (
	coreV1   = schema.GroupVersion{Version: "v1"}
	eventsV1 = schema.GroupVersion{Group: "events.k8s.io", Version: "v1"}

	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// Messages that apimachinery produces and several cases expect.
const (
	qualifiedNameRegexMsg = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
	subdomainMsg          = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
	labelKeyMsg           = qualifiedNameRegexMsg
)

// kubeletEvent is an old-style Event as the kubelet writes it through
// core/v1: no eventTime, a source, first/last timestamps and a count.
func kubeletEvent() *corev1.Event {
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:              "web-0.17f3c2a1b2c3d4e5",
			Namespace:         "default",
			UID:               "7d3c1c52-5f0e-4a57-9d3e-0c1a2b3c4d5e",
			ResourceVersion:   "41",
			CreationTimestamp: metav1.NewTime(t0),
		},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", Namespace: "default", Name: "web-0", UID: "a1b2", APIVersion: "v1",
			ResourceVersion: "1234", FieldPath: "spec.containers{app}",
		},
		Reason:         "BackOff",
		Message:        "Back-off restarting failed container app in pod web-0_default(a1b2)",
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: metav1.NewTime(t0),
		LastTimestamp:  metav1.NewTime(t0.Add(5 * time.Minute)),
		Count:          3,
		Type:           corev1.EventTypeWarning,
	}
}

// seriesEvent is a new-style Event as an events.k8s.io/v1 client writes it,
// in its stored core/v1 form.
func seriesEvent() *corev1.Event {
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:              "web-0.17f3c2a1b2c3d4e6",
			Namespace:         "default",
			UID:               "0f0e0d0c-0b0a-4909-8807-060504030201",
			ResourceVersion:   "42",
			CreationTimestamp: metav1.NewTime(t0),
		},
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-0", APIVersion: "v1"},
		Reason:              "FailedScheduling",
		Message:             "0/3 nodes are available: 3 Insufficient cpu.",
		Type:                corev1.EventTypeWarning,
		EventTime:           metav1.NewMicroTime(t0.Add(123456 * time.Microsecond)),
		Series:              &corev1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(t0.Add(time.Minute))},
		Action:              "Scheduling",
		ReportingController: "default-scheduler",
		ReportingInstance:   "default-scheduler-cp-1",
	}
}

func errorTexts(errs field.ErrorList) []string {
	texts := []string{}
	for _, e := range errs {
		texts = append(texts, e.Error())
	}
	return texts
}

// validationCase is one row of the table tests below: the Event start
// returns, changed by mutate, validated as gv, and the error texts expected
// (nil for none).
type validationCase struct {
	name   string
	gv     schema.GroupVersion
	start  func() *corev1.Event
	mutate func(ev *corev1.Event)
	want   []string
}

// runValidationCases runs every case through validate. The unchanged Event
// start returned is passed as old, so update rules see a real before and
// after; create validators ignore it.
func runValidationCases(t *testing.T, cases []validationCase, validate func(ev, old *corev1.Event, gv schema.GroupVersion) field.ErrorList) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := tc.start()
			ev := old.DeepCopy()
			if tc.mutate != nil {
				tc.mutate(ev)
			}
			want := tc.want
			if want == nil {
				want = []string{}
			}
			require.Equal(t, want, errorTexts(validate(ev, old, tc.gv)))
		})
	}
}

func TestValidateCreate(t *testing.T) {
	tests := []validationCase{
		// core/v1: old-style Events.
		{
			name: "core kubelet event is valid",
			gv:   coreV1, start: kubeletEvent,
		},
		{
			name: "core namespace mismatch",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.InvolvedObject.Namespace = "team-a" },
			want:   []string{`involvedObject.namespace: Invalid value: "team-a": does not match event.namespace`},
		},
		{
			name: "core node event in default is valid",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) {
				ev.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1", UID: "node-1"}
			},
		},
		{
			name: "core node event outside default",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) {
				ev.Namespace = "team-a"
				ev.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
			},
			want: []string{`involvedObject.namespace: Invalid value: "": does not match event.namespace`},
		},
		{
			name: "core node event in kube-system without eventTime",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) {
				ev.Namespace = "kube-system"
				ev.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
			},
			want: []string{`involvedObject.namespace: Invalid value: "": does not match event.namespace`},
		},
		{
			name: "core accepts names events.k8s.io refuses",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.Name = "Web_0." + strings.Repeat("x", 300) },
		},
		{
			name: "core ignores the deprecated-field and type rules",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.Type = "Bogus"; ev.Count = -1 },
		},
		{
			name: "core with eventTime needs reporting fields, named reportingComponent",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.EventTime = metav1.NewMicroTime(t0) },
			want: []string{
				`reportingComponent: Required value`,
				`reportingComponent: Invalid value: "": name part must be non-empty`,
				`reportingComponent: Invalid value: "": ` + qualifiedNameRegexMsg,
				`reportingInstance: Required value`,
				`action: Required value`,
			},
		},
		{
			name: "core with eventTime checks lengths",
			gv:   coreV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.ReportingInstance = strings.Repeat("i", 129)
				ev.Action = strings.Repeat("a", 129)
				ev.Reason = strings.Repeat("r", 129)
				ev.Message = strings.Repeat("m", 1025)
			},
			want: []string{
				`reportingInstance: Invalid value: "": can have at most 128 characters`,
				`action: Invalid value: "": can have at most 128 characters`,
				`reason: Invalid value: "": can have at most 128 characters`,
				`message: Invalid value: "": can have at most 1024 characters`,
			},
		},
		{
			name: "core with eventTime accepts limits exactly",
			gv:   coreV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.ReportingInstance = strings.Repeat("i", 128)
				ev.Action = strings.Repeat("a", 128)
				ev.Reason = strings.Repeat("r", 128)
				ev.Message = strings.Repeat("m", 1024)
			},
		},
		{
			name: "core with eventTime and cluster-scoped object outside default and kube-system",
			gv:   coreV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.Namespace = "team-a"
				ev.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
			},
			want: []string{`involvedObject.namespace: Invalid value: "": does not match event.namespace`},
		},
		{
			name: "core with eventTime does not compare differing namespaces",
			gv:   coreV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.InvolvedObject.Namespace = "other" },
		},
		{
			name: "core with an explicit zero eventTime counts it as set",
			gv:   coreV1, start: kubeletEvent,
			// What decoding "eventTime": "0001-01-01T00:00:00.000000Z" gives.
			mutate: func(ev *corev1.Event) { ev.EventTime = metav1.NewMicroTime(time.Time{}.Local()) },
			want: []string{
				`reportingComponent: Required value`,
				`reportingComponent: Invalid value: "": name part must be non-empty`,
				`reportingComponent: Invalid value: "": ` + qualifiedNameRegexMsg,
				`reportingInstance: Required value`,
				`action: Required value`,
			},
		},
		{
			name: "core invalid reporting controller",
			gv:   coreV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.ReportingController = "my controller" },
			want:   []string{`reportingComponent: Invalid value: "my controller": ` + qualifiedNameRegexMsg},
		},

		// events.k8s.io/v1: strict rules on top.
		{
			name: "events series event is valid",
			gv:   eventsV1, start: seriesEvent,
		},
		{
			name: "events singleton without series is valid",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Series = nil },
		},
		{
			name: "events domain-qualified reporting controller is valid",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.ReportingController = "example.com/my-controller" },
		},
		{
			name: "events missing reportingController and action",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.ReportingController = ""; ev.Action = "" },
			want: []string{
				`reportingController: Required value`,
				`reportingController: Invalid value: "": name part must be non-empty`,
				`reportingController: Invalid value: "": ` + qualifiedNameRegexMsg,
				`action: Required value`,
			},
		},
		{
			// Without eventTime the Event is judged old-style first, so the
			// reporting fields are not required; only eventTime is.
			name: "events missing eventTime, reportingController and action",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.EventTime = metav1.MicroTime{}
				ev.ReportingController = ""
				ev.Action = ""
			},
			want: []string{`eventTime: Required value`},
		},
		{
			name: "events name too long",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Name = strings.Repeat("n", 254) },
			want:   []string{`metadata.name: Invalid value: "` + strings.Repeat("n", 254) + `": must be no more than 253 characters`},
		},
		{
			name: "events name not a DNS subdomain",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Name = "Web_0" },
			want:   []string{`metadata.name: Invalid value: "Web_0": ` + subdomainMsg},
		},
		{
			name: "events generateName is checked as a prefix",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.GenerateName = "Web-" },
			want:   []string{`metadata.generateName: Invalid value: "Web-": ` + subdomainMsg},
		},
		{
			name: "events missing namespace",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Namespace = ""; ev.InvolvedObject.Namespace = "" },
			want: []string{
				`involvedObject.namespace: Invalid value: "": does not match event.namespace`,
				`metadata.namespace: Required value`,
			},
		},
		{
			name: "events regarding without namespace outside default",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.Namespace = "team-a"
				ev.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
			},
			want: []string{`involvedObject.namespace: Invalid value: "": does not match event.namespace`},
		},
		{
			name: "events regarding without namespace in kube-system is valid",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.Namespace = "kube-system"
				ev.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
			},
		},
		{
			name: "events unqualified finalizer",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.Finalizers = []string{"kubernetes", "foo", "example.com/cleanup", "orphan"}
			},
			want: []string{`metadata.finalizers[1]: Invalid value: "foo": name is neither a standard finalizer name nor is it fully qualified`},
		},
		{
			name: "events series count and lastObservedTime",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Series = &corev1.EventSeries{Count: 1} },
			want: []string{
				`series.count: Invalid value: "": should be at least 2`,
				`series.lastObservedTime: Required value`,
			},
		},
		{
			name: "events type must be Normal or Warning",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Type = "Info" },
			want:   []string{`type: Invalid value: "": has invalid value: Info`},
		},
		{
			name: "events empty type",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Type = "" },
			want:   []string{`type: Invalid value: "": has invalid value: `},
		},
		{
			name: "events deprecated core fields must be unset",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.FirstTimestamp = metav1.NewTime(t0)
				ev.LastTimestamp = metav1.NewTime(t0)
				ev.Count = 3
				ev.Source = corev1.EventSource{Host: "node-1"}
			},
			want: []string{
				`firstTimestamp: Invalid value: "": needs to be unset`,
				`lastTimestamp: Invalid value: "": needs to be unset`,
				`count: Invalid value: "": needs to be unset`,
				`source: Invalid value: "": needs to be unset`,
			},
		},
		{
			name: "events kubelet-style event",
			gv:   eventsV1, start: kubeletEvent,
			want: []string{
				`eventTime: Required value`,
				`firstTimestamp: Invalid value: "": needs to be unset`,
				`lastTimestamp: Invalid value: "": needs to be unset`,
				`count: Invalid value: "": needs to be unset`,
				`source: Invalid value: "": needs to be unset`,
			},
		},
		{
			name: "events everything at once, in kube's order",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.Name = "Bad_Name"
				ev.Namespace = "team-a"
				ev.InvolvedObject.Namespace = ""
				ev.ReportingController = "bad controller"
				ev.ReportingInstance = ""
				ev.Message = strings.Repeat("m", 1025)
				ev.Series.Count = 0
				ev.Type = "Info"
				ev.Count = 1
			},
			want: []string{
				`involvedObject.namespace: Invalid value: "": does not match event.namespace`,
				`reportingController: Invalid value: "bad controller": ` + qualifiedNameRegexMsg,
				`reportingInstance: Required value`,
				`message: Invalid value: "": can have at most 1024 characters`,
				`metadata.name: Invalid value: "Bad_Name": ` + subdomainMsg,
				`series.count: Invalid value: "": should be at least 2`,
				`type: Invalid value: "": has invalid value: Info`,
				`count: Invalid value: "": needs to be unset`,
			},
		},
		{
			name: "events.k8s.io/v1beta1 is as lenient as core, with reportingController paths",
			gv:   schema.GroupVersion{Group: "events.k8s.io", Version: "v1beta1"}, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.ReportingController = ""; ev.Name = "Bad_Name"; ev.Type = "" },
			want: []string{
				`reportingController: Required value`,
				`reportingController: Invalid value: "": name part must be non-empty`,
				`reportingController: Invalid value: "": ` + qualifiedNameRegexMsg,
			},
		},
	}
	runValidationCases(t, tests, func(ev, _ *corev1.Event, gv schema.GroupVersion) field.ErrorList {
		return ValidateCreate(ev, gv)
	})
}

func TestValidateCreateErrorTypes(t *testing.T) {
	ev := seriesEvent()
	ev.EventTime = metav1.MicroTime{}
	ev.Series.Count = 1
	errs := ValidateCreate(ev, eventsV1)
	require.Len(t, errs, 2)
	require.Equal(t, field.ErrorTypeInvalid, errs[0].Type)
	require.Equal(t, "series.count", errs[0].Field)
	require.Equal(t, "", errs[0].BadValue)
	require.Equal(t, field.ErrorTypeRequired, errs[1].Type)
	require.Equal(t, "eventTime", errs[1].Field)

	ev = seriesEvent()
	ev.ReportingController = "bad controller"
	errs = ValidateCreate(ev, eventsV1)
	require.Len(t, errs, 1)
	require.Equal(t, "format=qualified-name", errs[0].Origin)
}

func TestValidateCreateWithGeneric(t *testing.T) {
	tests := []validationCase{
		{
			name: "core name must be a path segment",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.Name = "a/b%c" },
			want: []string{
				`metadata.name: Invalid value: "a/b%c": may not contain '/'`,
				`metadata.name: Invalid value: "a/b%c": may not contain '%'`,
			},
		},
		{
			name: "core name may not be ..",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.Name = ".." },
			want:   []string{`metadata.name: Invalid value: "..": may not be '..'`},
		},
		{
			name: "core long and upper-case names are fine",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.Name = "Web_0." + strings.Repeat("x", 300) },
		},
		{
			name: "core metadata is checked only when the strategy passes",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) {
				ev.Labels = map[string]string{"bad key!": "v"}
				ev.InvolvedObject.Namespace = "team-a"
			},
			want: []string{`involvedObject.namespace: Invalid value: "team-a": does not match event.namespace`},
		},
		{
			name: "core labels, annotations, generation, namespace",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) {
				ev.Namespace = "Team_A"
				ev.InvolvedObject.Namespace = "Team_A"
				ev.Labels = map[string]string{"bad key!": "v"}
				ev.Generation = -1
			},
			want: []string{
				`metadata.namespace: Invalid value: "Team_A": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
				`metadata.generation: Invalid value: -1: must be greater than or equal to 0`,
				`metadata.labels: Invalid value: "bad key!": ` + labelKeyMsg,
			},
		},
		{
			name: "core unqualified finalizer is fine",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.Finalizers = []string{"foo"} },
		},
		{
			name: "events strict errors suppress generic ones",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Name = "Bad_Name" },
			want:   []string{`metadata.name: Invalid value: "Bad_Name": ` + subdomainMsg},
		},
		{
			name: "events valid",
			gv:   eventsV1, start: seriesEvent,
		},
	}
	runValidationCases(t, tests, func(ev, _ *corev1.Event, gv schema.GroupVersion) field.ErrorList {
		return ValidateCreateWithGeneric(ev, gv)
	})
}

func TestValidateUpdate(t *testing.T) {
	refJSON := `{"Kind":"Pod","Namespace":"default","Name":"web-1","UID":"","APIVersion":"v1","ResourceVersion":"","FieldPath":""}`
	tests := []validationCase{
		// core/v1: only the consistency checks; anything may change.
		{
			name: "core kubelet bumps count and lastTimestamp",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) {
				ev.Count = 4
				ev.LastTimestamp = metav1.NewTime(t0.Add(10 * time.Minute))
				ev.Message = "changed"
			},
		},
		{
			name: "core may rewrite anything consistent",
			gv:   coreV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.Reason = "Other"
				ev.InvolvedObject.Name = "web-1"
				ev.EventTime = metav1.NewMicroTime(t0.Add(time.Hour))
				ev.Series = &corev1.EventSeries{Count: 1}
			},
		},
		{
			name: "core update still checks namespaces",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.InvolvedObject.Namespace = "team-a" },
			want:   []string{`involvedObject.namespace: Invalid value: "team-a": does not match event.namespace`},
		},

		// events.k8s.io/v1: immutability.
		{
			name: "events series advances",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.Series = &corev1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(t0.Add(2 * time.Minute))}
			},
		},
		{
			name: "events series count below 2",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Series.Count = 1 },
			want:   []string{`series.count: Invalid value: "": should be at least 2`},
		},
		{
			name: "events unchanged invalid series is not rechecked",
			gv:   eventsV1,
			start: func() *corev1.Event {
				ev := seriesEvent()
				ev.Series.Count = 1
				return ev
			},
		},
		{
			name: "events note is immutable",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Message = "new note" },
			want:   []string{`message: Invalid value: "new note": field is immutable`},
		},
		{
			name: "events regarding is immutable, shown with internal field names",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.InvolvedObject.Name = "web-1" },
			want:   []string{`involvedObject: Invalid value: ` + refJSON + `: field is immutable`},
		},
		{
			name: "events reason is reported twice",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Reason = "Scheduled" },
			want: []string{
				`reason: Invalid value: "Scheduled": field is immutable`,
				`reason: Invalid value: "Scheduled": field is immutable`,
			},
		},
		{
			name: "events type is immutable",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Type = corev1.EventTypeNormal },
			want:   []string{`type: Invalid value: "Normal": field is immutable`},
		},
		{
			name: "events eventTime may move below a microsecond",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.EventTime = metav1.NewMicroTime(ev.EventTime.Add(999 * time.Nanosecond)) },
		},
		{
			name: "events eventTime in another location is the same time",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.EventTime = metav1.NewMicroTime(ev.EventTime.Local()) },
		},
		{
			name: "events eventTime is immutable",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.EventTime = metav1.NewMicroTime(ev.EventTime.Add(2 * time.Microsecond)) },
			want:   []string{`eventTime: Invalid value: "2026-03-01T12:00:00.123458Z": field is immutable`},
		},
		{
			name: "events related may not be added",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.Related = &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", APIVersion: "v1"}
			},
			want: []string{`related: Invalid value: ` + refJSON + `: field is immutable`},
		},
		{
			name: "events related may not be removed",
			gv:   eventsV1,
			start: func() *corev1.Event {
				ev := seriesEvent()
				ev.Related = &corev1.ObjectReference{Kind: "Node", Name: "node-1"}
				return ev
			},
			mutate: func(ev *corev1.Event) { ev.Related = nil },
			want:   []string{`related: Invalid value: null: field is immutable`},
		},
		{
			name: "events reporting fields and action are immutable",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.Action = "Binding"
				ev.ReportingController = "other-scheduler"
				ev.ReportingInstance = "other-1"
			},
			want: []string{
				`action: Invalid value: "Binding": field is immutable`,
				`reportingController: Invalid value: "other-scheduler": field is immutable`,
				`reportingInstance: Invalid value: "other-1": field is immutable`,
			},
		},
		{
			name: "events deprecated fields are immutable too",
			gv:   eventsV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) {
				ev.Source.Component = "kubelet-2"
				ev.FirstTimestamp = metav1.Time{}
				ev.LastTimestamp = metav1.NewTime(t0.Add(time.Hour))
				ev.Count = 4
			},
			want: []string{
				`source: Invalid value: {"Component":"kubelet-2","Host":"node-1"}: field is immutable`,
				`firstTimestamp: Invalid value: null: field is immutable`,
				`lastTimestamp: Invalid value: "2026-03-01T13:00:00Z": field is immutable`,
				`count: Invalid value: 4: field is immutable`,
			},
		},
		{
			name: "events metadata update rules",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.ResourceVersion = ""
				ev.Finalizers = []string{"foo"}
			},
			want: []string{
				`metadata.resourceVersion: Invalid value: "": must be specified for an update`,
				`metadata.finalizers[0]: Invalid value: "foo": name is neither a standard finalizer name nor is it fully qualified`,
			},
		},
		{
			name: "events namespace is immutable",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Namespace = "team-a" },
			want: []string{
				`metadata.namespace: Invalid value: "team-a": field is immutable`,
			},
		},
	}
	runValidationCases(t, tests, ValidateUpdate)
}

func TestValidateUpdateWithGeneric(t *testing.T) {
	tests := []validationCase{
		{
			name: "core kubelet update is valid",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.Count++ },
		},
		{
			name: "core invalid label is reported once",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) { ev.Labels = map[string]string{"bad key!": "v"} },
			want:   []string{`metadata.labels: Invalid value: "bad key!": ` + labelKeyMsg},
		},
		{
			name: "core generic errors come before the strategy's",
			gv:   coreV1, start: kubeletEvent,
			mutate: func(ev *corev1.Event) {
				ev.Labels = map[string]string{"bad key!": "v"}
				ev.InvolvedObject.Namespace = "team-a"
			},
			want: []string{
				`metadata.labels: Invalid value: "bad key!": ` + labelKeyMsg,
				`involvedObject.namespace: Invalid value: "team-a": does not match event.namespace`,
			},
		},
		{
			name: "core generation may not go down",
			gv:   coreV1,
			start: func() *corev1.Event {
				ev := kubeletEvent()
				ev.Generation = 3
				return ev
			},
			mutate: func(ev *corev1.Event) { ev.Generation = 2 },
			want:   []string{`metadata.generation: Invalid value: 2: must not be decremented`},
		},
		{
			name: "events changed reason is reported once",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) { ev.Reason = "Scheduled" },
			want:   []string{`reason: Invalid value: "Scheduled": field is immutable`},
		},
		{
			name: "events metadata errors are reported once",
			gv:   eventsV1, start: seriesEvent,
			mutate: func(ev *corev1.Event) {
				ev.ResourceVersion = ""
				ev.Labels = map[string]string{"bad key!": "v"}
				ev.Message = "new note"
			},
			want: []string{
				`metadata.labels: Invalid value: "bad key!": ` + labelKeyMsg,
				`metadata.resourceVersion: Invalid value: "": must be specified for an update`,
				`message: Invalid value: "new note": field is immutable`,
			},
		},
	}
	runValidationCases(t, tests, ValidateUpdateWithGeneric)
}

func TestDeduplicate(t *testing.T) {
	a := field.Invalid(field.NewPath("reason"), "x", "field is immutable")
	b := field.Required(field.NewPath("action"), "")
	a2 := field.Invalid(field.NewPath("reason"), "x", "field is immutable")
	require.Equal(t, field.ErrorList{a, b}, Deduplicate(field.ErrorList{a, b, a2, b}))
	require.Nil(t, Deduplicate(nil))
	require.Nil(t, Deduplicate(field.ErrorList{}))
}

func TestPrepareLeavesEventsAlone(t *testing.T) {
	ev := seriesEvent()
	want := ev.DeepCopy()
	PrepareForCreate(ev)
	require.Equal(t, want, ev)

	old := kubeletEvent()
	oldWant := old.DeepCopy()
	PrepareForUpdate(ev, old)
	require.Equal(t, want, ev)
	require.Equal(t, oldWant, old)
}
