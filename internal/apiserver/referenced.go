package apiserver

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/eventpipe/eventpipe/internal/registry/namespace"
	"github.com/eventpipe/eventpipe/internal/registry/refonly"
)

// referencedCoreTypes are the core/v1 types events most often refer to,
// listed in discovery without verbs so that kubectl can resolve
// `kubectl events --for pod/NAME`; see package refonly. Namespaces answer
// GET (package namespace): kubectl looks a namespace up after a NotFound.
func referencedCoreTypes() map[string]rest.Storage {
	return map[string]rest.Storage{
		"pods":                   refonly.New(func() runtime.Object { return &corev1.Pod{} }, "Pod", "pod", true),
		"nodes":                  refonly.New(func() runtime.Object { return &corev1.Node{} }, "Node", "node", false),
		"services":               refonly.New(func() runtime.Object { return &corev1.Service{} }, "Service", "service", true),
		"persistentvolumeclaims": refonly.New(func() runtime.Object { return &corev1.PersistentVolumeClaim{} }, "PersistentVolumeClaim", "persistentvolumeclaim", true),
		"namespaces":             namespace.NewREST(),
	}
}

func init() {
	// The referenced types must be known to the scheme to be installed.
	Scheme.AddKnownTypes(corev1.SchemeGroupVersion, &corev1.Pod{}, &corev1.Node{}, &corev1.Service{},
		&corev1.PersistentVolumeClaim{}, &corev1.Namespace{}, &corev1.NamespaceList{})
}
