// Package version reports what eventpipe build is running.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at link time: -ldflags "-X github.com/eventpipe/eventpipe/internal/version.Version=v0.1.0".
var Version = "v0.0.0-dev"

// Info describes the build.
type Info struct {
	Version   string `json:"version"`
	GitCommit string `json:"gitCommit"`
	GitDirty  bool   `json:"gitTreeDirty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the build's version, taking the commit from the Go build info.
func Get() Info {
	i := Info{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.GitCommit = s.Value
			case "vcs.modified":
				i.GitDirty = s.Value == "true"
			}
		}
	}
	return i
}

// String renders the info on one line.
func (i Info) String() string {
	commit := i.GitCommit
	if commit == "" {
		commit = "unknown"
	}
	if i.GitDirty {
		commit += "-dirty"
	}
	return fmt.Sprintf("eventpipe %s (commit %s, %s, %s)", i.Version, commit, i.GoVersion, i.Platform)
}
