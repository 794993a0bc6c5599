package fields

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kfields "k8s.io/apimachinery/pkg/fields"
)

// API groups that serve Events. Only their v1 versions are served, as in
// kube-apiserver 1.37, so a group name is enough to pick a vocabulary.
const (
	// GroupCore is the legacy core group, served under /api/v1.
	GroupCore = corev1.GroupName
	// GroupEvents is events.k8s.io, served under /apis/events.k8s.io/v1.
	GroupEvents = eventsv1.GroupName
)

// Canonical field labels: the keys of the set that kube-apiserver's event
// strategy builds for matching, in the core/v1 spelling. Selectors of both
// groups are rewritten to these before they are matched or stored.
const (
	LabelMetadataName                  = "metadata.name"
	LabelMetadataNamespace             = "metadata.namespace"
	LabelInvolvedObjectKind            = "involvedObject.kind"
	LabelInvolvedObjectNamespace       = "involvedObject.namespace"
	LabelInvolvedObjectName            = "involvedObject.name"
	LabelInvolvedObjectUID             = "involvedObject.uid"
	LabelInvolvedObjectAPIVersion      = "involvedObject.apiVersion"
	LabelInvolvedObjectResourceVersion = "involvedObject.resourceVersion"
	LabelInvolvedObjectFieldPath       = "involvedObject.fieldPath"
	LabelReason                        = "reason"
	// LabelReportingComponent holds the event's reportingController. The
	// odd name is kube's: it is what core/v1 clients select on.
	LabelReportingComponent = "reportingComponent"
	// LabelSource holds source.component, or reportingController when the
	// event has no source component (events.k8s.io writers set none), so that
	// `source=kubelet` finds events from either kind of writer.
	LabelSource = "source"
	LabelType   = "type"
)

// Field is one canonical selectable field of an Event.
type Field struct {
	// Label is the canonical label, one of the Label* constants.
	Label string
	// Value returns the field's value for an event: the exact string that
	// kube-apiserver would match a selector against, "" when the event does
	// not set it. It never returns an error and must not be given nil.
	Value func(ev *corev1.Event) string
}

// canonical lists every canonical field in a fixed order. The order is part
// of the contract of Canonical: storage code may number columns by it.
var canonical = []Field{
	{LabelMetadataName, func(ev *corev1.Event) string { return ev.Name }},
	{LabelMetadataNamespace, func(ev *corev1.Event) string { return ev.Namespace }},
	{LabelInvolvedObjectKind, func(ev *corev1.Event) string { return ev.InvolvedObject.Kind }},
	{LabelInvolvedObjectNamespace, func(ev *corev1.Event) string { return ev.InvolvedObject.Namespace }},
	{LabelInvolvedObjectName, func(ev *corev1.Event) string { return ev.InvolvedObject.Name }},
	{LabelInvolvedObjectUID, func(ev *corev1.Event) string { return string(ev.InvolvedObject.UID) }},
	{LabelInvolvedObjectAPIVersion, func(ev *corev1.Event) string { return ev.InvolvedObject.APIVersion }},
	{LabelInvolvedObjectResourceVersion, func(ev *corev1.Event) string { return ev.InvolvedObject.ResourceVersion }},
	{LabelInvolvedObjectFieldPath, func(ev *corev1.Event) string { return ev.InvolvedObject.FieldPath }},
	{LabelReason, func(ev *corev1.Event) string { return ev.Reason }},
	{LabelReportingComponent, func(ev *corev1.Event) string { return ev.ReportingController }},
	{LabelSource, sourceValue},
	{LabelType, func(ev *corev1.Event) string { return ev.Type }},
}

// sourceValue falls back to reportingController, as kube's strategy does.
func sourceValue(ev *corev1.Event) string {
	if ev.Source.Component != "" {
		return ev.Source.Component
	}
	return ev.ReportingController
}

var canonicalByLabel = func() map[string]Field {
	m := make(map[string]Field, len(canonical))
	for _, f := range canonical {
		m[f.Label] = f
	}
	return m
}()

// Canonical returns every canonical field, in a stable order that only ever
// grows at the end. It is the vocabulary a storage backend must be able to
// filter on: after ParseSelector, every requirement names one of these
// labels, with operator selection.Equals or selection.NotEquals ("=="
// arrives as Equals), compared as exact strings. A backend that keeps one
// column per field should fill it at write time with Field.Value, so that
// defaults (empty strings, the source fallback) behave as they do here.
// The returned slice is a copy.
func Canonical() []Field {
	return append([]Field(nil), canonical...)
}

// Lookup returns the canonical field with the given label.
func Lookup(label string) (Field, bool) {
	f, ok := canonicalByLabel[label]
	return f, ok
}

// groupLabels maps, per group, each label a client may send to its canonical
// label. core/v1 accepts the canonical labels as they are.
// events.k8s.io/v1 spells involvedObject as regarding and reportingComponent
// as reportingController, and offers no label for source.
var groupLabels = map[string][]labelMapping{
	GroupCore: {
		{LabelMetadataName, LabelMetadataName},
		{LabelMetadataNamespace, LabelMetadataNamespace},
		{LabelInvolvedObjectKind, LabelInvolvedObjectKind},
		{LabelInvolvedObjectNamespace, LabelInvolvedObjectNamespace},
		{LabelInvolvedObjectName, LabelInvolvedObjectName},
		{LabelInvolvedObjectUID, LabelInvolvedObjectUID},
		{LabelInvolvedObjectAPIVersion, LabelInvolvedObjectAPIVersion},
		{LabelInvolvedObjectResourceVersion, LabelInvolvedObjectResourceVersion},
		{LabelInvolvedObjectFieldPath, LabelInvolvedObjectFieldPath},
		{LabelReason, LabelReason},
		{LabelReportingComponent, LabelReportingComponent},
		{LabelSource, LabelSource},
		{LabelType, LabelType},
	},
	GroupEvents: {
		{"metadata.name", LabelMetadataName},
		{"metadata.namespace", LabelMetadataNamespace},
		{"regarding.kind", LabelInvolvedObjectKind},
		{"regarding.namespace", LabelInvolvedObjectNamespace},
		{"regarding.name", LabelInvolvedObjectName},
		{"regarding.uid", LabelInvolvedObjectUID},
		{"regarding.apiVersion", LabelInvolvedObjectAPIVersion},
		{"regarding.resourceVersion", LabelInvolvedObjectResourceVersion},
		{"regarding.fieldPath", LabelInvolvedObjectFieldPath},
		{"reason", LabelReason},
		{"reportingController", LabelReportingComponent},
		{"type", LabelType},
	},
}

type labelMapping struct {
	external, canonical string
}

var groupLookup = func() map[string]map[string]string {
	m := make(map[string]map[string]string, len(groupLabels))
	for group, mappings := range groupLabels {
		byLabel := make(map[string]string, len(mappings))
		for _, lm := range mappings {
			byLabel[lm.external] = lm.canonical
		}
		m[group] = byLabel
	}
	return m
}()

// ErrUnknownGroup is returned (wrapped) when a group is neither GroupCore
// nor GroupEvents. It means a bug in the caller, never bad client input.
var ErrUnknownGroup = errors.New("unknown event API group")

// UnsupportedLabelError is a field label that the group does not accept.
// Its text is kube-apiserver's (the field label conversion functions of
// pkg/apis/core/v1 and pkg/apis/events/v1).
type UnsupportedLabelError struct {
	Label string
}

func (e *UnsupportedLabelError) Error() string {
	return "field label not supported: " + e.Label
}

// Labels returns the field labels that clients of group may use in a field
// selector, in a stable order.
func Labels(group string) ([]string, error) {
	mappings, ok := groupLabels[group]
	if !ok {
		return nil, fmt.Errorf("list field labels of group %q: %w", group, ErrUnknownGroup)
	}
	out := make([]string, len(mappings))
	for i, lm := range mappings {
		out[i] = lm.external
	}
	return out, nil
}

// ConvertFieldLabel rewrites a client's field label in group to its
// canonical label; the value is passed through unchanged. A label the group
// does not accept gives an *UnsupportedLabelError, whose text kube-apiserver
// returns to the client verbatim. Labels are case-sensitive, as in kube.
func ConvertFieldLabel(group, label, value string) (internalLabel, internalValue string, err error) {
	byLabel, ok := groupLookup[group]
	if !ok {
		return "", "", fmt.Errorf("convert field label %q of group %q: %w", label, group, ErrUnknownGroup)
	}
	canonicalLabel, ok := byLabel[label]
	if !ok {
		return "", "", &UnsupportedLabelError{Label: label}
	}
	return canonicalLabel, value, nil
}

// Fields returns the canonical field set of ev, the set kube-apiserver's
// event strategy (ToSelectableFields) builds: every canonical label is
// present, with "" for what ev does not set. Match a parsed selector against
// a stored event with sel.Matches(Fields(ev)). A nil ev counts as an empty
// Event.
func Fields(ev *corev1.Event) kfields.Set {
	if ev == nil {
		ev = &corev1.Event{}
	}
	set := make(kfields.Set, len(canonical))
	for _, f := range canonical {
		set[f.Label] = f.Value(ev)
	}
	return set
}

// ParseSelector parses a fieldSelector query parameter sent to group's
// events endpoint and rewrites every label to its canonical label, the way
// kube-apiserver's list and watch handlers do (decode with
// fields.ParseSelector, then Transform through the scheme's field label
// conversion).
//
// Client errors come back as an *apierrors.StatusError, 400 BadRequest,
// whose message is kube's: the parser's text for a malformed selector (for
// example "invalid selector: 'foo'; can't understand 'foo'") or
// "field label not supported: <label>". Terms are checked in sorted order,
// so the label named is the one kube would name. An unknown group is a
// caller bug and comes back as a plain error wrapping ErrUnknownGroup.
//
// The empty string selects everything.
func ParseSelector(group, s string) (kfields.Selector, error) {
	if _, ok := groupLookup[group]; !ok {
		return nil, fmt.Errorf("parse field selector of group %q: %w", group, ErrUnknownGroup)
	}
	sel, err := kfields.ParseSelector(s)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	sel, err = sel.Transform(func(label, value string) (string, string, error) {
		return ConvertFieldLabel(group, label, value)
	})
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return sel, nil
}
