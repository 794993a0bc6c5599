// Package storetest opens ClickHouse stores for tests, each on a private
// clickhouse-server (chtest) and closed when the test ends, or, when
// EVENTPIPE_TEST_CLICKHOUSE=cluster, each in a database of its own on the
// test package's shared 2 shards × 2 replicas cluster: the same tests then
// check that cluster mode gives the same answers as one server.
package storetest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
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

// ModeEnv names the environment variable that selects the store New
// returns: "cluster" for cluster mode, anything else for one server.
// `make test` runs the store's packages both ways.
const ModeEnv = "EVENTPIPE_TEST_CLICKHOUSE"

// ClusterMode reports whether ModeEnv asks for cluster mode.
func ClusterMode() bool { return os.Getenv(ModeEnv) == "cluster" }

// New returns a migrated store for tb: on a server started for tb, or in
// cluster mode (ModeEnv) on the package's shared cluster. A package whose
// tests call New must stop the shared cluster from its TestMain
// (chtest.StopSharedCluster).
func New(tb testing.TB) *chstore.Store {
	tb.Helper()
	if ClusterMode() {
		return Cluster(tb, chstore.DefaultConfig())
	}
	return Migrated(tb, chtest.ForTest(tb))
}

var databases atomic.Int64

// Cluster returns a store in cluster mode on the package's shared cluster
// (chtest.SharedCluster), migrated, in a new database named after tb;
// cfg supplies the other settings.
func Cluster(tb testing.TB, cfg chstore.Config) *chstore.Store {
	tb.Helper()
	env := chtest.SharedCluster(tb)
	cfg.Addr, cfg.Cluster = env.Addr(), env.Name
	cfg.Database = DatabaseName(tb)
	s, err := chstore.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

var notIdent = regexp.MustCompile(`[^a-z0-9]+`)

// DatabaseName returns a database name unique in the process, readable as
// tb's name.
func DatabaseName(tb testing.TB) string {
	n := strings.Trim(notIdent.ReplaceAllString(strings.ToLower(tb.Name()), "_"), "_")
	if len(n) > 40 {
		n = n[:40]
	}
	return fmt.Sprintf("t%d_%s", databases.Add(1), n)
}
