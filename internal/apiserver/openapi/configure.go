package openapi

import (
	"k8s.io/apimachinery/pkg/runtime"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	utilopenapi "k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/kube-openapi/pkg/common"
)

// Definitions is GetOpenAPIDefinitions with the changes of disabled
// apiserver features reverted (today: enum values are pruned while the
// OpenAPIEnums feature gate is off), as kube-apiserver serves them.
func Definitions() common.GetOpenAPIDefinitions {
	return utilopenapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(GetOpenAPIDefinitions)
}

// Configure sets cfg.OpenAPIConfig and cfg.OpenAPIV3Config so that the server
// publishes /openapi/v2 and /openapi/v3 documents for every type registered in
// scheme. scheme must hold every kind the server serves (core/v1 Event,
// events.k8s.io/v1 Event, ...): the definition namer takes the
// x-kubernetes-group-version-kind extensions, which kubectl needs to find a
// kind's schema, from it. title and version become the documents' info.title
// and info.version; an empty version lets the server fill in its own.
func Configure(cfg *genericapiserver.Config, scheme *runtime.Scheme, title, version string) {
	namer := openapinamer.NewDefinitionNamer(scheme)
	defs := Definitions()

	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, namer)
	cfg.OpenAPIConfig.Info.Title = title
	cfg.OpenAPIConfig.Info.Version = version

	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, namer)
	cfg.OpenAPIV3Config.Info.Title = title
	cfg.OpenAPIV3Config.Info.Version = version
}
