package apiserver

import (
	"fmt"

	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"

	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// activityResources add the storage of one or more resources of
// activity.miloapis.com/v1alpha1 to the map, keyed by resource name (and
// "name/subresource"). Each resource keeps its wiring in its own file.
var activityResources = []func(c CompletedConfig, storage map[string]rest.Storage) error{}

// installActivityGroup serves activity.miloapis.com/v1alpha1 with every
// resource of activityResources; with none, the group is not served.
func (c CompletedConfig) installActivityGroup(gs *genericapiserver.GenericAPIServer) error {
	storage := map[string]rest.Storage{}
	for _, add := range activityResources {
		if err := add(c, storage); err != nil {
			return err
		}
	}
	if len(storage) == 0 {
		return nil
	}
	info := genericapiserver.NewDefaultAPIGroupInfo(activityv1alpha1.GroupName, Scheme, ParameterCodec, Codecs)
	info.VersionedResourcesStorageMap[activityv1alpha1.SchemeGroupVersion.Version] = storage
	if err := gs.InstallAPIGroup(&info); err != nil {
		return fmt.Errorf("install %s: %w", activityv1alpha1.SchemeGroupVersion, err)
	}
	return nil
}
