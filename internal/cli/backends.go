package cli

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// backends are the connections most roles start with: NATS with the EVENTS
// stream ensured, and ClickHouse with its migrations applied (if asked).
type backends struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	store *chstore.Store
}

// openBackends connects as client name; close releases what it opened.
// Every error names the setting and the address tried.
func openBackends(ctx context.Context, name string, natsCfg eventlog.ClientConfig, streamCfg eventlog.Config,
	storeCfg chstore.Config, migrate bool) (*backends, error) {
	natsCfg.Name = name
	nc, js, err := natsCfg.Connect()
	if err != nil {
		return nil, err
	}
	b := &backends{nc: nc, js: js}
	if err := eventlog.Ensure(ctx, js, streamCfg); err != nil {
		b.close()
		return nil, err
	}
	if b.store, err = chstore.Open(ctx, storeCfg); err != nil {
		b.close()
		return nil, err
	}
	if migrate {
		if _, err := b.store.Migrate(ctx); err != nil {
			b.close()
			return nil, err
		}
	}
	return b, nil
}

func (b *backends) close() {
	if b.store != nil {
		_ = b.store.Close()
	}
	b.nc.Close()
}
