package openapi

import (
	"encoding/json"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/version"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// servedTypes are the types eventpipe serves and those they reference; each
// needs a definition, under the name the apiserver looks it up by.
var servedTypes = []any{
	corev1.Event{}, corev1.EventList{}, corev1.ObjectReference{}, corev1.EventSource{}, corev1.EventSeries{},
	eventsv1.Event{}, eventsv1.EventList{}, eventsv1.EventSeries{},
	metav1.ObjectMeta{}, metav1.ListMeta{}, metav1.TypeMeta{}, metav1.Status{}, metav1.StatusDetails{},
	metav1.Table{}, metav1.PartialObjectMetadata{}, metav1.PartialObjectMetadataList{},
	metav1.WatchEvent{}, metav1.DeleteOptions{}, metav1.ListOptions{}, metav1.GetOptions{},
	metav1.CreateOptions{}, metav1.PatchOptions{}, metav1.UpdateOptions{},
	metav1.APIGroup{}, metav1.APIGroupList{}, metav1.APIResourceList{}, metav1.APIVersions{},
	metav1.ManagedFieldsEntry{}, metav1.OwnerReference{}, metav1.Time{}, metav1.MicroTime{},
	runtime.RawExtension{}, version.Info{}, resource.Quantity{}, intstr.IntOrString{},
}

func refTo(prefix string) common.ReferenceCallback {
	return func(name string) spec.Ref {
		return spec.MustCreateRef(prefix + common.EscapeJsonPointer(name))
	}
}

// The definitions are keyed by OpenAPI model name, the REST-friendly form of
// the Go type name, which is what the apiserver (util.GetCanonicalTypeName,
// the scheme's ToOpenAPIDefinitionName) and kubectl use.
func TestDefinitionsKeyedByModelName(t *testing.T) {
	defs := GetOpenAPIDefinitions(refTo("#/definitions/"))
	for _, goName := range []string{
		"k8s.io/api/core/v1.Event",
		"k8s.io/api/events/v1.Event",
		"k8s.io/apimachinery/pkg/apis/meta/v1.ObjectMeta",
	} {
		name := util.ToRESTFriendlyName(goName)
		if _, ok := defs[name]; !ok {
			t.Errorf("no definition for %s (model name %q)", goName, name)
		}
	}
	if _, ok := defs["io.k8s.api.core.v1.Event"]; !ok {
		t.Errorf(`no definition "io.k8s.api.core.v1.Event"`)
	}
	for _, obj := range servedTypes {
		name := util.GetCanonicalTypeName(obj)
		def, ok := defs[name]
		if !ok {
			t.Errorf("no definition for %T (looked up as %q)", obj, name)
			continue
		}
		if def.Schema.Description == "" && len(def.Schema.Type) == 0 && len(def.Schema.OneOf) == 0 {
			t.Errorf("definition %q is empty", name)
		}
	}
}

// Every schema a definition refers to is itself defined: otherwise the
// spec builders fail at server start (or, for a lazily built group, on the
// first request for its document).
func TestEveryReferenceIsDefined(t *testing.T) {
	referenced := map[string]bool{}
	defs := GetOpenAPIDefinitions(func(name string) spec.Ref {
		referenced[name] = true
		return spec.MustCreateRef("#/definitions/" + common.EscapeJsonPointer(name))
	})
	for name, def := range defs {
		for _, dep := range def.Dependencies {
			referenced[dep] = true
		}
		if len(def.Schema.Type) == 0 && len(def.Schema.OneOf) == 0 && len(def.Schema.Properties) == 0 && def.Schema.Description == "" {
			t.Errorf("definition %q is empty", name)
		}
	}
	var missing []string
	for name := range referenced {
		if _, ok := defs[name]; !ok {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("referenced but not defined: %v", missing)
	}
	t.Logf("%d definitions, %d of them referenced", len(defs), len(referenced))
}

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, eventsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	return scheme
}

func configured(t *testing.T) *genericapiserver.Config {
	t.Helper()
	cfg := &genericapiserver.Config{}
	Configure(cfg, newScheme(t), "eventpipe", "v0.1.0")
	if cfg.OpenAPIConfig == nil || cfg.OpenAPIV3Config == nil {
		t.Fatal("Configure left OpenAPIConfig or OpenAPIV3Config nil")
	}
	return cfg
}

func TestConfigureSetsInfo(t *testing.T) {
	cfg := configured(t)
	for _, info := range []*spec.Info{cfg.OpenAPIConfig.Info, cfg.OpenAPIV3Config.Info} {
		if info.Title != "eventpipe" || info.Version != "v0.1.0" {
			t.Errorf("info = %q %q, want eventpipe v0.1.0", info.Title, info.Version)
		}
	}
	if cfg.OpenAPIConfig.GetDefinitions == nil || cfg.OpenAPIV3Config.GetDefinitions == nil {
		t.Error("GetDefinitions not set")
	}
}

// gvks returns the x-kubernetes-group-version-kind extension of s as
// "group/version/kind" strings; kubectl finds a kind's schema by it.
func gvks(t *testing.T, s *spec.Schema) []string {
	t.Helper()
	raw, ok := s.Extensions["x-kubernetes-group-version-kind"]
	if !ok {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var list []struct{ Group, Version, Kind string }
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("x-kubernetes-group-version-kind %s: %v", b, err)
	}
	var out []string
	for _, g := range list {
		out = append(out, g.Group+"/"+g.Version+"/"+g.Kind)
	}
	return out
}

var eventKinds = []struct {
	model, gvk string
}{
	{"io.k8s.api.core.v1.Event", "/v1/Event"},
	{"io.k8s.api.core.v1.EventList", "/v1/EventList"},
	{"io.k8s.api.events.v1.Event", "events.k8s.io/v1/Event"},
	{"io.k8s.api.events.v1.EventList", "events.k8s.io/v1/EventList"},
}

func resourceNames() []string {
	names := make([]string, 0, len(servedTypes))
	for _, obj := range servedTypes {
		names = append(names, util.GetCanonicalTypeName(obj))
	}
	return names
}

func checkSchemas(t *testing.T, schemas map[string]spec.Schema, refPrefix string) {
	t.Helper()
	for _, k := range eventKinds {
		s, ok := schemas[k.model]
		if !ok {
			t.Errorf("%s: no schema", k.model)
			continue
		}
		if got := gvks(t, &s); len(got) != 1 || got[0] != k.gvk {
			t.Errorf("%s: x-kubernetes-group-version-kind = %v, want [%s]", k.model, got, k.gvk)
		}
	}
	event := schemas["io.k8s.api.core.v1.Event"]
	involved := event.Properties["involvedObject"]
	// A $ref may be wrapped in allOf (v3) to carry a default or description.
	ref := involved.Ref.String()
	if ref == "" && len(involved.AllOf) == 1 {
		ref = involved.AllOf[0].Ref.String()
	}
	if want := refPrefix + "io.k8s.api.core.v1.ObjectReference"; ref != want {
		t.Errorf("Event.involvedObject refers to %q, want %q", ref, want)
	}
	if _, ok := schemas["io.k8s.api.core.v1.ObjectReference"]; !ok {
		t.Error("ObjectReference not in the spec")
	}
	if _, ok := schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]; !ok {
		t.Error("ObjectMeta not in the spec")
	}
}

func TestBuildOpenAPIV2(t *testing.T) {
	cfg := configured(t)
	swagger, err := builder.BuildOpenAPIDefinitionsForResources(cfg.OpenAPIConfig, resourceNames()...)
	if err != nil {
		t.Fatalf("building the OpenAPI v2 definitions: %v", err)
	}
	checkSchemas(t, swagger.Definitions, "#/definitions/")
	if _, err := json.Marshal(swagger); err != nil {
		t.Fatalf("marshalling the v2 spec: %v", err)
	}
	t.Logf("v2: %d definitions", len(swagger.Definitions))
}

func TestBuildOpenAPIV3(t *testing.T) {
	cfg := configured(t)
	schemas, err := builder3.BuildOpenAPIDefinitionsForResources(cfg.OpenAPIV3Config, resourceNames()...)
	if err != nil {
		t.Fatalf("building the OpenAPI v3 schemas: %v", err)
	}
	flat := make(map[string]spec.Schema, len(schemas))
	for name, s := range schemas {
		flat[name] = *s
	}
	checkSchemas(t, flat, "#/components/schemas/")
	if _, err := json.Marshal(schemas); err != nil {
		t.Fatalf("marshalling the v3 schemas: %v", err)
	}
	t.Logf("v3: %d schemas", len(schemas))
}
