package roles

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

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
	// Epoch is when the EVENTS stream whose sequences eventpipe counts was
	// created (eventlog.CheckEpoch); roles stop when it changes.
	Epoch time.Time
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
	if c.Epoch, err = eventlog.CheckEpoch(ctx, js); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// epochCheckEvery is how often a running role checks that EVENTS is still
// the stream it started on.
const epochCheckEvery = 2 * time.Second

// runGuarded runs serve until ctx ends or EVENTS stops being the stream
// this process started on (deleted, or deleted and created again): then it
// stops serve and returns the reason, so that the process exits rather
// than serve the new stream's sequences as continuations of the old ones.
// Restarted, it refuses to start (Connect) until an operator resolves it.
func (c *Conns) runGuarded(ctx context.Context, log *slog.Logger, serve func(context.Context) error) error {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	guard, served := make(chan error, 1), make(chan error, 1)
	go func() { guard <- eventlog.GuardEpoch(ctx, c.JS, c.Epoch, epochCheckEvery, log) }()
	go func() { served <- serve(ctx) }()
	select {
	case err := <-served:
		cancel()
		<-guard
		return err
	case err := <-guard:
		if err == nil { // ctx ended
			return <-served
		}
		log.Error("stopping: the EVENTS stream is not the one this process started on", "err", err)
		cancel()
		<-served
		return err
	}
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
