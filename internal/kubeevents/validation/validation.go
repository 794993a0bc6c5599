package validation

import (
	"fmt"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1beta1 "k8s.io/api/events/v1beta1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Length limits kube-apiserver puts on the free-text fields of an Event that
// carries an eventTime (pkg/apis/core/validation/events.go). Names are ours;
// the numbers are kube's and show up in error details.
const (
	MaxReportingInstanceLength = 128
	MaxActionLength            = 128
	MaxReasonLength            = 128
	MaxNoteLength              = 1024
)

// Detail strings that clients read in field errors. They must stay
// byte-for-byte what kube-apiserver 1.37 says.
const (
	detailNamespaceMismatch = "does not match event.namespace"
	detailMustBeUnset       = "needs to be unset"
	detailSeriesCountMin    = "should be at least 2"
)

// isLenientVersion reports whether requests in gv get only the checks that
// have applied to Events since before events.k8s.io/v1 existed. Kube keeps
// core/v1 and events.k8s.io/v1beta1 lenient for backwards compatibility;
// every other version (events.k8s.io/v1, and a request whose version is
// unknown) gets the strict checks as well.
func isLenientVersion(gv schema.GroupVersion) bool {
	return gv == corev1.SchemeGroupVersion || gv == eventsv1beta1.SchemeGroupVersion
}

// ValidateCreate returns the errors kube-apiserver's Event strategy reports
// for creating ev through a request in requestGroupVersion (core/v1 or
// events.k8s.io/v1). ev is the stored, core/v1-shaped form of the request
// body, after the generic registry filled in uid and creationTimestamp.
//
// Every Event gets the legacy consistency checks. Requests through
// events.k8s.io/v1 additionally get strict metadata validation (the name must
// be a DNS subdomain), the series rules, a required eventTime, a type of
// Normal or Warning, and must leave the deprecated core fields (count,
// source, firstTimestamp, lastTimestamp) unset.
//
// The generic metadata checks that rest.BeforeCreate adds on top of the
// strategy are not included; see ValidateCreateWithGeneric.
func ValidateCreate(ev *corev1.Event, requestGroupVersion schema.GroupVersion) field.ErrorList {
	errs := validateConsistency(ev, requestGroupVersion)
	if isLenientVersion(requestGroupVersion) {
		return errs
	}

	errs = append(errs, validateStrictObjectMeta(&ev.ObjectMeta, field.NewPath("metadata"))...)
	errs = append(errs, validateSeries(ev)...)
	if isUnsetTime(ev.EventTime.Time) {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	if ev.Type != corev1.EventTypeNormal && ev.Type != corev1.EventTypeWarning {
		errs = append(errs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", ev.Type)))
	}
	if !isUnsetTime(ev.FirstTimestamp.Time) {
		errs = append(errs, field.Invalid(field.NewPath("firstTimestamp"), "", detailMustBeUnset))
	}
	if !isUnsetTime(ev.LastTimestamp.Time) {
		errs = append(errs, field.Invalid(field.NewPath("lastTimestamp"), "", detailMustBeUnset))
	}
	if ev.Count != 0 {
		errs = append(errs, field.Invalid(field.NewPath("count"), "", detailMustBeUnset))
	}
	if ev.Source.Component != "" || ev.Source.Host != "" {
		errs = append(errs, field.Invalid(field.NewPath("source"), "", detailMustBeUnset))
	}
	return errs
}

// ValidateUpdate returns the errors kube-apiserver's Event strategy reports
// for replacing oldEv with newEv through a request in requestGroupVersion.
//
// The new Event always gets the legacy consistency checks. Through
// events.k8s.io/v1, metadata update rules apply, a changed series must obey
// the series rules, and nearly every other field is immutable. eventTime may
// change below a microsecond only, so that clients which truncate to
// microseconds (as JSON does) can write back what they read.
//
// The generic metadata checks that rest.BeforeUpdate adds are not included;
// see ValidateUpdateWithGeneric.
func ValidateUpdate(newEv, oldEv *corev1.Event, requestGroupVersion schema.GroupVersion) field.ErrorList {
	errs := validateConsistency(newEv, requestGroupVersion)
	if isLenientVersion(requestGroupVersion) {
		return errs
	}

	errs = append(errs, validateStrictObjectMetaUpdate(&newEv.ObjectMeta, &oldEv.ObjectMeta, field.NewPath("metadata"))...)
	if !reflect.DeepEqual(newEv.Series, oldEv.Series) {
		errs = append(errs, validateSeries(newEv)...)
	}

	// The order, and the repeated check of reason, are kube's. The second
	// reason error never reaches a client: see Deduplicate.
	errs = append(errs, immutable(toCoreReference(newEv.InvolvedObject), toCoreReference(oldEv.InvolvedObject), "involvedObject")...)
	errs = append(errs, immutable(newEv.Reason, oldEv.Reason, "reason")...)
	errs = append(errs, immutable(newEv.Message, oldEv.Message, "message")...)
	errs = append(errs, immutable(toCoreSource(newEv.Source), toCoreSource(oldEv.Source), "source")...)
	errs = append(errs, immutable(newEv.FirstTimestamp, oldEv.FirstTimestamp, "firstTimestamp")...)
	errs = append(errs, immutable(newEv.LastTimestamp, oldEv.LastTimestamp, "lastTimestamp")...)
	errs = append(errs, immutable(newEv.Count, oldEv.Count, "count")...)
	errs = append(errs, immutable(newEv.Reason, oldEv.Reason, "reason")...)
	errs = append(errs, immutable(newEv.Type, oldEv.Type, "type")...)

	// Only a difference that survives truncation to microseconds counts; the
	// reported value is then the full new eventTime.
	if newEv.EventTime.Truncate(time.Microsecond).UTC() != oldEv.EventTime.Truncate(time.Microsecond).UTC() {
		errs = append(errs, immutable(newEv.EventTime, oldEv.EventTime, "eventTime")...)
	}

	errs = append(errs, immutable(newEv.Action, oldEv.Action, "action")...)
	errs = append(errs, immutable(toCoreReferencePtr(newEv.Related), toCoreReferencePtr(oldEv.Related), "related")...)
	errs = append(errs, immutable(newEv.ReportingController, oldEv.ReportingController, "reportingController")...)
	errs = append(errs, immutable(newEv.ReportingInstance, oldEv.ReportingInstance, "reportingInstance")...)
	return errs
}

// validateSeries checks the series of an events.k8s.io/v1 Event: a series
// records repeats, so it counts at least two occurrences and says when the
// last one was seen.
func validateSeries(ev *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	if ev.Series == nil {
		return errs
	}
	if ev.Series.Count < 2 {
		errs = append(errs, field.Invalid(field.NewPath("series.count"), "", detailSeriesCountMin))
	}
	if isUnsetTime(ev.Series.LastObservedTime.Time) {
		errs = append(errs, field.Required(field.NewPath("series.lastObservedTime"), ""))
	}
	return errs
}

// validateConsistency holds the checks every Event gets, whatever the
// request version. An Event without eventTime is an old-style one: its
// namespace must agree with its involved object's. An Event with eventTime
// is new-style: it must name its reporter, action and reason within the
// length limits, and an involved object without a namespace is only
// accepted in the default and kube-system namespaces.
func validateConsistency(ev *corev1.Event, gv schema.GroupVersion) field.ErrorList {
	var errs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")

	if isUnsetTime(ev.EventTime.Time) {
		objNS := ev.InvolvedObject.Namespace
		switch {
		case objNS == "":
			// Cluster-scoped objects; old clients put their events in
			// "default", so that is accepted too.
			if ev.Namespace != metav1.NamespaceNone && ev.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(nsPath, objNS, detailNamespaceMismatch))
			}
		case ev.Namespace != objNS:
			errs = append(errs, field.Invalid(nsPath, objNS, detailNamespaceMismatch))
		}
		return errs
	}

	if ev.InvolvedObject.Namespace == "" && ev.Namespace != metav1.NamespaceDefault && ev.Namespace != metav1.NamespaceSystem {
		errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, detailNamespaceMismatch))
	}

	// core/v1 calls the field reportingComponent on the wire.
	controllerPath := field.NewPath("reportingController")
	if gv == corev1.SchemeGroupVersion {
		controllerPath = field.NewPath("reportingComponent")
	}
	if ev.ReportingController == "" {
		errs = append(errs, field.Required(controllerPath, ""))
	}
	for _, msg := range utilvalidation.IsQualifiedName(ev.ReportingController) {
		errs = append(errs, field.Invalid(controllerPath, ev.ReportingController, msg).WithOrigin("format=qualified-name"))
	}

	errs = append(errs, requiredWithLimit(ev.ReportingInstance, "reportingInstance", MaxReportingInstanceLength)...)
	errs = append(errs, requiredWithLimit(ev.Action, "action", MaxActionLength)...)
	errs = append(errs, requiredWithLimit(ev.Reason, "reason", MaxReasonLength)...)
	if len(ev.Message) > MaxNoteLength {
		errs = append(errs, tooManyCharacters("message", MaxNoteLength))
	}
	return errs
}

// requiredWithLimit reports an empty value as required and a value longer
// than limit bytes as invalid (kube counts bytes, not runes).
func requiredWithLimit(value, path string, limit int) field.ErrorList {
	var errs field.ErrorList
	if value == "" {
		errs = append(errs, field.Required(field.NewPath(path), ""))
	}
	if len(value) > limit {
		errs = append(errs, tooManyCharacters(path, limit))
	}
	return errs
}

// tooManyCharacters is kube's length error for Event text fields: an Invalid
// error with an empty value, not a TooLong error.
func tooManyCharacters(path string, limit int) *field.Error {
	return field.Invalid(field.NewPath(path), "", fmt.Sprintf("can have at most %v characters", limit))
}

// isUnsetTime is kube's test for an absent Event time: equality with the
// zero time.Time, location included. It is deliberately not IsZero: a time
// decoded from an explicit "0001-01-01T00:00:00Z" carries the local
// location and therefore counts as set, exactly as in kube-apiserver.
func isUnsetTime(t time.Time) bool {
	return t == time.Time{}
}

func immutable(newVal, oldVal any, path string) field.ErrorList {
	return apimachineryvalidation.ValidateImmutableField(newVal, oldVal, field.NewPath(path))
}
