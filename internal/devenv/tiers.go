package devenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/tiers/retention"
	"github.com/eventpipe/eventpipe/internal/writer"
)

// devTiers is the tiers file dev mode starts with: both demo tenants on
// Pro, so their week of demo history stays queryable and kept. Edit
// DIR/tiers.yaml while dev mode runs (e.g. Project/beta: Free) to see a tier
// change take effect without a restart.
const devTiers = `# eventpipe dev: tiers (docs/tiers.md). Re-read every 10s.
defaultTier: Free
tenants:
  Project/alpha: Pro
  Project/beta: Pro
`

// startTiers loads DIR/tiers.yaml (writing it first if absent), starts the
// API server's tier enforcement and the retention worker.
func startTiers(ctx context.Context, dir string, js jetstream.JetStream, store *chstore.Store, w *writer.Writer,
	reg prometheus.Registerer, log *slog.Logger) (*apiserver.Tiers, error) {
	path := filepath.Join(dir, "tiers.yaml")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(path, []byte(devTiers), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	o := apiserver.TiersOptions{Config: path, Replicas: 1}
	t, err := o.NewTiers(ctx, js, store, w.Watermark, reg, log)
	if err != nil {
		return nil, err
	}
	t.Run(ctx)
	go retention.New(store, t.Resolver, retention.DefaultConfig(), clock.RealClock{}, reg, log).Run(ctx)
	return t, nil
}
