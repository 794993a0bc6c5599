package devenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// devTiers is the tiers file dev mode starts with: both demo tenants on
// Pro, so their week of demo history stays queryable and kept, and the
// scope of the kube-apiserver behind the etcd front (EtcdScope) on
// Enterprise, whose rate limit a whole cluster's Events fit in. Edit
// DIR/tiers.yaml while dev mode runs (e.g. Project/beta: Free) to see a tier
// change take effect without a restart.
const devTiers = `# eventpipe dev: tiers (docs/tiers.md). Re-read every 10s.
defaultTier: Free
tenants:
  Project/alpha: Pro
  Project/beta: Pro
  Project/cluster: Enterprise
`

// tiersFile returns DIR/tiers.yaml, writing it first if absent. The API
// server enforces it and the writer's retention worker applies it, as the
// two roles' --tiers.config.
func tiersFile(dir string) (string, error) {
	path := filepath.Join(dir, "tiers.yaml")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(path, []byte(devTiers), 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", path, err)
		}
	}
	return path, nil
}
