package apiserver

import (
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/component-base/compatibility"

	"github.com/eventpipe/eventpipe/internal/version"
)

// effectiveVersion reports, on /version, the Kubernetes release whose API
// eventpipe serves, marked as eventpipe's, with eventpipe's own build facts.
// (k8s.io/component-base reads those from link-time variables that a plain
// `go build` or `go test` never sets.)
type effectiveVersion struct {
	compatibility.MutableEffectiveVersion
}

func newEffectiveVersion() effectiveVersion {
	return effectiveVersion{compatibility.NewEffectiveVersionFromString(KubernetesVersion, "", "")}
}

func (e effectiveVersion) Info() *apimachineryversion.Info {
	info := e.MutableEffectiveVersion.Info()
	b := version.Get()
	info.GitVersion = "v" + KubernetesVersion + "+eventpipe-" + b.Version
	info.GitCommit = b.GitCommit
	info.GitTreeState = "clean"
	if b.GitDirty {
		info.GitTreeState = "dirty"
	}
	info.GoVersion, info.Platform, info.Compiler = b.GoVersion, b.Platform, "gc"
	return info
}
