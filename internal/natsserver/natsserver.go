// Package natsserver runs an embedded NATS server with JetStream, for
// `eventpipe dev` and for tests. Production points at an external cluster.
package natsserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server.
type Options struct {
	// StoreDir holds JetStream's files; data persists across restarts.
	StoreDir string
	// Port to listen on at 127.0.0.1; -1 picks a free one.
	Port int
	// MaxStore bounds JetStream's file storage in bytes; 0 means the server's
	// default (a share of the disk).
	MaxStore int64
	// SyncAlways makes JetStream fsync every write before acknowledging it
	// (the server's sync_interval: always); otherwise it flushes to disk
	// every two minutes, the server's default.
	SyncAlways bool
}

// Start runs a server and waits until it accepts clients.
func Start(o Options) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("start embedded NATS: no store directory given")
	}
	if o.Port > 0 {
		// The server only reports a busy port as "not ready"; say what it is.
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)))
		if err != nil {
			return nil, fmt.Errorf("start embedded NATS on 127.0.0.1:%d: %w", o.Port, err)
		}
		l.Close()
	}
	s, err := server.NewServer(&server.Options{
		ServerName:            "eventpipe-dev",
		Host:                  "127.0.0.1",
		Port:                  o.Port,
		JetStream:             true,
		StoreDir:              o.StoreDir,
		JetStreamMaxStore:     o.MaxStore,
		SyncAlways:            o.SyncAlways,
		NoSigs:                true,
		MaxPayload:            8 << 20,
		DisableShortFirstPing: true,
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("start embedded NATS: not ready after 30s")
	}
	return s, nil
}
