// Package natstest starts an embedded JetStream server for one test.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/natsserver"
)

// Server is a test's JetStream server and a client connected to it.
type Server struct {
	*server.Server
	Dir string
	NC  *nats.Conn
	JS  jetstream.JetStream
}

// ForTest starts a server on a free port with a temporary store and a client;
// both are closed at cleanup.
func ForTest(tb testing.TB) *Server {
	tb.Helper()
	return Restart(tb, tb.TempDir(), -1)
}

// Restart starts a server on dir (keeping what a previous server stored there)
// and port (-1 for a free one).
func Restart(tb testing.TB, dir string, port int) *Server {
	tb.Helper()
	s, err := natsserver.Start(natsserver.Options{StoreDir: dir, Port: port})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return &Server{Server: s, Dir: dir, NC: nc, JS: js}
}
