package event

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/operation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage/names"

	"github.com/eventpipe/eventpipe/internal/kubeevents/validation"
)

// strategy gives k8s.io/apiserver's rest.BeforeCreate and rest.BeforeUpdate
// what they need, for the stored core/v1 record seen through one group.
type strategy struct {
	names.NameGenerator
	// requestGV is the group version the client used; events.k8s.io/v1
	// requests get stricter validation.
	requestGV schema.GroupVersion
}

func newStrategy(gv schema.GroupVersion) strategy {
	return strategy{NameGenerator: names.SimpleNameGenerator, requestGV: gv}
}

// coreEventKind is how kube-apiserver types its (core-shaped) internal Event
// for both groups, so that errors read `Event "x" is invalid` whichever group
// the client used.
var coreEventKind = schema.GroupVersionKind{Version: "v1", Kind: "Event"}

// ObjectKinds implements runtime.ObjectTyper.
func (strategy) ObjectKinds(runtime.Object) ([]schema.GroupVersionKind, bool, error) {
	return []schema.GroupVersionKind{coreEventKind}, false, nil
}

// Recognizes implements runtime.ObjectTyper.
func (strategy) Recognizes(gvk schema.GroupVersionKind) bool { return gvk == coreEventKind }

func (strategy) NamespaceScoped() bool { return true }

func (strategy) AllowCreateOnUpdate(context.Context) bool { return true }

func (strategy) AllowUnconditionalUpdate(context.Context) bool { return true }

func (strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	validation.PrepareForCreate(obj.(*corev1.Event))
}

func (strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	validation.PrepareForUpdate(obj.(*corev1.Event), old.(*corev1.Event))
}

func (s strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validation.ValidateCreate(obj.(*corev1.Event), s.requestGV)
}

func (s strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidateUpdate(obj.(*corev1.Event), old.(*corev1.Event), s.requestGV)
}

func (strategy) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }

func (strategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}

func (strategy) Canonicalize(runtime.Object) {}

// ValidateDeclaratively is where kube-apiserver's Event strategy removes
// repeated errors (its declarative-validation step rebuilds the list without
// duplicates); Events have no declarative rules that reach clients.
func (strategy) ValidateDeclaratively(_ context.Context, _, _ runtime.Object, errs field.ErrorList, _ operation.Type, _ rest.DeclarativeValidationConfig) field.ErrorList {
	return validation.Deduplicate(errs)
}

// DeclarativeValidationConfig implements rest.DeclarativeValidation.
func (strategy) DeclarativeValidationConfig(context.Context, runtime.Object, runtime.Object) rest.DeclarativeValidationConfig {
	return rest.DeclarativeValidationConfig{}
}

var _ rest.DeclarativeValidationStrategy = strategy{}
