// Package storetest opens ClickHouse stores for tests, each on a private
// clickhouse-server (chtest) and closed when the test ends.
package storetest

import (
	"context"
	"testing"

	"github.com/eventpipe/eventpipe/internal/chserver"
	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// Open opens a store on srv with the default configuration and closes it at
// cleanup. It applies no migrations.
func Open(tb testing.TB, srv *chserver.Server) *chstore.Store {
	tb.Helper()
	cfg := chstore.DefaultConfig()
	cfg.Addr = srv.Addr
	s, err := chstore.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Migrated is Open followed by every migration.
func Migrated(tb testing.TB, srv *chserver.Server) *chstore.Store {
	tb.Helper()
	s := Open(tb, srv)
	if _, err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// New starts a server for tb and returns a migrated store on it.
func New(tb testing.TB) *chstore.Store {
	tb.Helper()
	return Migrated(tb, chtest.ForTest(tb))
}
