package kubetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Helm returns the path of the helm that scripts/build-test-tools.sh builds
// into .tools/bin, and the directory of the CRDs it copies next to it
// (.tools/crds/cert-manager, .tools/crds/prometheus-operator). When either
// is missing it skips the test, naming the command that provides it, or
// fails it when CI=true.
func Helm(tb testing.TB) (helm, crds string) {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		missing(tb, err)
		return "", ""
	}
	helm = filepath.Join(root, ".tools", "bin", "helm")
	crds = filepath.Join(root, ".tools", "crds")
	if err := isExecutable(helm); err != nil {
		missing(tb, fmt.Errorf("%w; build it with %s (in %s)", err, BuildCommand, root))
	}
	for _, d := range []string{"cert-manager", "prometheus-operator"} {
		if m, _ := filepath.Glob(filepath.Join(crds, d, "*.yaml")); len(m) == 0 {
			missing(tb, fmt.Errorf("no CRDs in %s; copy them with %s (in %s)", filepath.Join(crds, d), BuildCommand, root))
		}
	}
	return helm, crds
}

// RunHelm runs helm with args (in the repository root, with a private
// configuration and cache so that nothing of the machine's helm setup
// matters) and returns its standard output, or an error carrying its
// standard error.
func RunHelm(ctx context.Context, tb testing.TB, args ...string) (string, error) {
	tb.Helper()
	helm, _ := Helm(tb)
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	home := tb.TempDir()
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-cluster"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %v: %w: %s", args, err, stderr.String())
	}
	return stdout.String(), nil
}
