package roles

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/audit"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/registry/event"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/tiers/admission"
	"github.com/eventpipe/eventpipe/internal/watchtail"
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

	// events is the EVENTS log as the front doors use it, made once (see
	// frontDoorLog).
	eventsOnce sync.Once
	events     frontLog
	eventsErr  error

	// tiers is the process's tier enforcement, made once (see
	// tiersAdmission).
	tiersOnce       sync.Once
	tiers           *admission.Policy
	tiersBackground []func(context.Context)
	tiersErr        error
}

// frontLog is what the front doors (the API server, the etcd front) read
// and write the EVENTS log through.
type frontLog struct {
	log       event.LogReaderPublisher
	watermark *eventlog.Watermark
}

// frontDoorLog returns the EVENTS log with the process's one shared watch
// tail, and the writer's watermark: every front door in a process (dev
// mode runs the API server and the etcd front together) reads the log once
// for all their watches. The tail reads while ctx, the first caller's,
// lasts.
func (c *Conns) frontDoorLog(ctx context.Context, log *slog.Logger) (frontLog, error) {
	c.eventsOnce.Do(func() {
		reader, err := eventlog.NewReader(ctx, c.JS)
		if err != nil {
			c.eventsErr = err
			return
		}
		wm, err := eventlog.WatchWatermark(ctx, c.JS)
		if err != nil {
			c.eventsErr = err
			return
		}
		c.events = frontLog{watermark: wm, log: event.LogReaderPublisher{Reader: reader, Publisher: eventlog.NewPublisher(c.JS),
			Watches: watchtail.NewSource(ctx, reader, log)}}
	})
	return c.events, c.eventsErr
}

// Connect connects to NATS as client name and ensures the EVENTS and AUDIT
// streams.
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
	if err := audit.Ensure(ctx, js, streamCfg); err != nil {
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
