package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of this package.
const GroupName = "activity.miloapis.com"

// SchemeGroupVersion is the group and version of this package's types.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// Resource returns a GroupResource of this group.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

var (
	// SchemeBuilder collects the functions that add this group's types to
	// a scheme; each types file registers its own in init.
	SchemeBuilder runtime.SchemeBuilder
)

// AddToScheme adds every type of this group, as v1alpha1 and as the group's
// internal version.
func AddToScheme(s *runtime.Scheme) error { return SchemeBuilder.AddToScheme(s) }

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		metav1.AddToGroupVersion(s, SchemeGroupVersion)
		return nil
	})
}

// addTypes registers objs in v1alpha1 and in the internal version. Types
// files call it from init via SchemeBuilder.Register.
func addTypes(s *runtime.Scheme, objs ...runtime.Object) {
	s.AddKnownTypes(SchemeGroupVersion, objs...)
	s.AddKnownTypes(schema.GroupVersion{Group: GroupName, Version: runtime.APIVersionInternal}, objs...)
}
