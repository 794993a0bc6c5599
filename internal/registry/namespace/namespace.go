// Package namespace serves namespaces as eventpipe sees them: every name is
// a namespace that may hold events, so GET of any valid name answers an
// Active Namespace. kubectl relies on this: after a NotFound for a
// namespaced object it looks the namespace up, and reports the namespace as
// missing if that fails, hiding the real error.
package namespace

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/registry/rest"
)

// REST serves GET on namespaces.
type REST struct {
	rest.TableConvertor
}

var (
	_ rest.Getter               = (*REST)(nil)
	_ rest.Scoper               = (*REST)(nil)
	_ rest.SingularNameProvider = (*REST)(nil)
)

// NewREST returns the namespaces storage.
func NewREST() *REST {
	return &REST{TableConvertor: rest.NewDefaultTableConvertor(corev1.Resource("namespaces"))}
}

func (r *REST) New() runtime.Object     { return &corev1.Namespace{} }
func (r *REST) Destroy()                {}
func (r *REST) NamespaceScoped() bool   { return false }
func (r *REST) GetSingularName() string { return "namespace" }

// Get answers an Active namespace for any valid name.
func (r *REST) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	if len(validation.IsDNS1123Label(name)) > 0 {
		return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	return &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelMetadataName: name}},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}, nil
}
