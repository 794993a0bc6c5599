package roles

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// Conns are the connections roles share: NATS and JetStream with the
// EVENTS stream ensured, and, for the roles that read or write ClickHouse,
// the store.
type Conns struct {
	NC *nats.Conn
	JS jetstream.JetStream
	// Stream is the EVENTS stream's configuration as ensured; the writer
	// trims by its retention.
	Stream eventlog.Config
	// Store is nil until OpenStore.
	Store *chstore.Store
}

// Connect connects to NATS as client name and ensures the EVENTS stream.
// Every error names the setting and the address tried.
func Connect(ctx context.Context, name string, natsCfg eventlog.ClientConfig, streamCfg eventlog.Config) (*Conns, error) {
	natsCfg.Name = name
	nc, js, err := natsCfg.Connect()
	if err != nil {
		return nil, err
	}
	c := &Conns{NC: nc, JS: js, Stream: streamCfg}
	if err := eventlog.Ensure(ctx, js, streamCfg); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// OpenStore opens the ClickHouse store and, when cfg.Migrate is set,
// applies pending migrations.
func (c *Conns) OpenStore(ctx context.Context, cfg chstore.Config) error {
	s, err := chstore.Open(ctx, cfg)
	if err != nil {
		return err
	}
	if cfg.Migrate {
		if _, err := s.Migrate(ctx); err != nil {
			_ = s.Close()
			return err
		}
	}
	c.Store = s
	return nil
}

// Close releases what Connect and OpenStore opened.
func (c *Conns) Close() {
	if c.Store != nil {
		_ = c.Store.Close()
	}
	c.NC.Close()
}

// NATSReady fails while the NATS connection is down, for readiness checks.
func (c *Conns) NATSReady() error {
	if !c.NC.IsConnected() {
		return fmt.Errorf("NATS connection is %s", c.NC.Status())
	}
	return nil
}
