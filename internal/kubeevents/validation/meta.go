package validation

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// detailFinalizerName is kube's complaint about a finalizer that is neither
// one of the built-in names nor domain-qualified.
const detailFinalizerName = "name is neither a standard finalizer name nor is it fully qualified"

// builtinFinalizers are the finalizer names kube accepts without a domain
// prefix: the namespace controller's, and the two garbage-collector modes.
var builtinFinalizers = map[string]bool{
	string(corev1.FinalizerKubernetes): true,
	metav1.FinalizerOrphanDependents:   true,
	metav1.FinalizerDeleteDependents:   true,
}

// validateStrictObjectMeta is the metadata check kube's core validation runs
// for events.k8s.io/v1 creates: the apimachinery checks with a DNS-subdomain
// name, plus kube's own rule for unqualified finalizer names.
func validateStrictObjectMeta(meta *metav1.ObjectMeta, path *field.Path) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(meta, true, apimachineryvalidation.NameIsDNSSubdomain, path)
	return append(errs, validateFinalizerNames(meta.Finalizers, path.Child("finalizers"))...)
}

// validateStrictObjectMetaUpdate is the events.k8s.io/v1 update counterpart of
// validateStrictObjectMeta.
func validateStrictObjectMetaUpdate(newMeta, oldMeta *metav1.ObjectMeta, path *field.Path) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(newMeta, oldMeta, path)
	return append(errs, validateFinalizerNames(newMeta.Finalizers, path.Child("finalizers"))...)
}

func validateFinalizerNames(finalizers []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, f := range finalizers {
		if !strings.Contains(f, "/") && !builtinFinalizers[f] {
			errs = append(errs, field.Invalid(path.Index(i), f, detailFinalizerName))
		}
	}
	return errs
}

// pathSegmentName is the name rule the generic registry applies to every
// resource: the name (or generateName prefix) must be usable as one URL
// path segment. It has no length limit and allows any other character.
func pathSegmentName(name string, prefix bool) []string {
	if prefix {
		return content.IsPathSegmentPrefix(name)
	}
	return content.IsPathSegmentName(name)
}

// genericCreateMetaErrors is the metadata check rest.ValidateCreate adds for
// every namespaced resource once the strategy found nothing wrong.
func genericCreateMetaErrors(ev *corev1.Event) field.ErrorList {
	return apimachineryvalidation.ValidateObjectMetaAccessor(&ev.ObjectMeta, true, pathSegmentName, field.NewPath("metadata"))
}

// ValidateCreateWithGeneric returns the complete list of field errors
// kube-apiserver reports for creating ev: the strategy's (ValidateCreate)
// and, only when those are empty, the generic registry's metadata checks
// (name and generateName usable as a path segment, namespace a DNS label,
// labels, annotations, owner references, finalizers, managed fields).
//
// Because the generic checks are skipped whenever the strategy complains, a
// core/v1 create with, say, a namespace mismatch and a bad label reports the
// mismatch only; that is kube's behaviour. Repeated errors are dropped, as
// in kube (see Deduplicate).
//
// Use it when the create does not go through rest.BeforeCreate, which adds
// the generic checks itself (but deduplicates only for a strategy that
// implements rest.DeclarativeValidationStrategy).
func ValidateCreateWithGeneric(ev *corev1.Event, requestGroupVersion schema.GroupVersion) field.ErrorList {
	errs := ValidateCreate(ev, requestGroupVersion)
	if len(errs) == 0 {
		errs = append(errs, genericCreateMetaErrors(ev)...)
	}
	return Deduplicate(errs)
}

// ValidateUpdateWithGeneric returns the complete list of field errors
// kube-apiserver reports for replacing oldEv with newEv: the generic
// registry's metadata checks (the create checks on the new metadata, then
// the update checks against the old), followed by the strategy's
// (ValidateUpdate).
//
// Several of these checks overlap (an invalid label is found by both the
// create and the update metadata checks, and through events.k8s.io/v1 also
// by the strict ones); as in kube, repeated errors are dropped (see
// Deduplicate).
//
// Use it when the update does not go through rest.BeforeUpdate, which adds
// the generic checks itself. newEv is expected to have been through what
// rest.BeforeUpdate does before it validates: generation copied from oldEv,
// and uid (when empty), creationTimestamp, deletionTimestamp and
// deletionGracePeriodSeconds (when set on oldEv) carried over.
func ValidateUpdateWithGeneric(newEv, oldEv *corev1.Event, requestGroupVersion schema.GroupVersion) field.ErrorList {
	path := field.NewPath("metadata")
	errs := apimachineryvalidation.ValidateObjectMetaAccessor(&newEv.ObjectMeta, true, pathSegmentName, path)
	errs = append(errs, apimachineryvalidation.ValidateObjectMetaAccessorUpdate(&newEv.ObjectMeta, &oldEv.ObjectMeta, path)...)
	errs = append(errs, ValidateUpdate(newEv, oldEv, requestGroupVersion)...)
	return Deduplicate(errs)
}

// Deduplicate drops every error whose Error() text equals that of an
// earlier one, keeping the order of the rest, and returns nil when nothing
// is left.
//
// This is the last step of kube-apiserver's Event validation. Kube's
// handwritten checks do report some problems more than once (a changed
// reason through events.k8s.io/v1; an invalid label from both the create
// and the update metadata checks of an update), but because the Event
// strategy opts into declarative validation, rest.ValidateCreate and
// rest.ValidateUpdate pass the combined list through
// validate.FilterCoveredHandwrittenErrors, whose field.ErrorList.Filter
// rebuilds it from ToAggregate, and ToAggregate drops repeated texts. So a
// client never sees the same cause twice.
//
// A strategy used with rest.BeforeCreate / rest.BeforeUpdate gets the same
// effect by implementing rest.DeclarativeValidationStrategy with a
// ValidateDeclaratively that returns Deduplicate(validationErrs).
func Deduplicate(errs field.ErrorList) field.ErrorList {
	var out field.ErrorList
	seen := make(map[string]bool, len(errs))
	for _, e := range errs {
		msg := e.Error()
		if seen[msg] {
			continue
		}
		seen[msg] = true
		out = append(out, e)
	}
	return out
}

// coreObjectReference and coreEventSource have the field names and order of
// kube's internal (unversioned) ObjectReference and EventSource, and like
// them no JSON tags. Kube reports the value of an immutable involvedObject,
// related or source field by marshalling the internal struct, so the detail
// reads {"Kind":"Pod","Namespace":...} with Go field names and no omitted
// fields; these types reproduce that rendering.
type coreObjectReference struct {
	Kind            string
	Namespace       string
	Name            string
	UID             types.UID
	APIVersion      string
	ResourceVersion string
	FieldPath       string
}

type coreEventSource struct {
	Component string
	Host      string
}

func toCoreReference(r corev1.ObjectReference) coreObjectReference {
	return coreObjectReference{
		Kind:            r.Kind,
		Namespace:       r.Namespace,
		Name:            r.Name,
		UID:             r.UID,
		APIVersion:      r.APIVersion,
		ResourceVersion: r.ResourceVersion,
		FieldPath:       r.FieldPath,
	}
}

func toCoreReferencePtr(r *corev1.ObjectReference) *coreObjectReference {
	if r == nil {
		return nil
	}
	c := toCoreReference(*r)
	return &c
}

func toCoreSource(s corev1.EventSource) coreEventSource {
	return coreEventSource{Component: s.Component, Host: s.Host}
}
