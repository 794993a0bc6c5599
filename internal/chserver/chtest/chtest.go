// Package chtest starts a private clickhouse-server for tests, or a private
// ClickHouse cluster on a private ZooKeeper.
package chtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/eventpipe/eventpipe/internal/chserver"
	"github.com/eventpipe/eventpipe/internal/testenv"
	"github.com/eventpipe/eventpipe/internal/zkserver"
)

// ForTest starts a server for one test (or, from TestMain, a package) in a
// temporary directory and stops it at cleanup. When clickhouse-server is not
// installed it skips the test, unless CI=true, where a missing dependency is a
// failure, never a silent skip.
func ForTest(tb testing.TB) *chserver.Server {
	tb.Helper()
	s, err := chserver.Start(context.Background(), chserver.Options{Dir: tb.TempDir()})
	if errors.Is(err, chserver.ErrNotInstalled) {
		testenv.Missing(tb, err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Stop() })
	return s
}

// RequireBinary skips tb when clickhouse-server is not installed, or fails
// it when CI=true, for tests that start it through something else (dev
// mode, the API server's own process).
func RequireBinary(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath(chserver.Binary); err != nil {
		testenv.Missing(tb, chserver.ErrNotInstalled)
	}
}

// ClusterEnv is a ZooKeeper and a ClickHouse cluster on it.
type ClusterEnv struct {
	*chserver.Cluster
	ZooKeeper *zkserver.Server
	dir       string
}

// shared is the one cluster of a test package: starting ZooKeeper and four
// servers costs seconds, so every test of the package shares them and
// keeps apart by using its own database.
var shared struct {
	once sync.Once
	env  *ClusterEnv
	err  error
}

// SharedCluster returns the package's ZooKeeper and 2 shards × 2 replicas
// cluster (named "eventpipe"), starting them on first use. The package's
// TestMain must call StopSharedCluster after m.Run. Missing binaries skip
// the test, or fail it when CI=true.
func SharedCluster(tb testing.TB) *ClusterEnv {
	tb.Helper()
	shared.once.Do(func() { shared.env, shared.err = startCluster() })
	if errors.Is(shared.err, chserver.ErrNotInstalled) || errors.Is(shared.err, zkserver.ErrNotInstalled) {
		testenv.Missing(tb, shared.err)
	}
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.env
}

func startCluster() (*ClusterEnv, error) {
	if _, err := exec.LookPath(chserver.Binary); err != nil {
		return nil, chserver.ErrNotInstalled
	}
	dir, err := os.MkdirTemp("", "eventpipe-chcluster-")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	zk, err := zkserver.Start(ctx, filepath.Join(dir, "zookeeper"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c, err := chserver.StartCluster(ctx, chserver.ClusterOptions{Dir: dir, ZooKeeper: zk.Addr})
	if err != nil {
		zk.Stop()
		os.RemoveAll(dir)
		return nil, err
	}
	return &ClusterEnv{Cluster: c, ZooKeeper: zk, dir: dir}, nil
}

// StopSharedCluster stops the shared cluster, if one was started, and
// removes its files. TestMain calls it after m.Run.
func StopSharedCluster() {
	if shared.env == nil {
		return
	}
	shared.env.Cluster.Stop()
	shared.env.ZooKeeper.Stop()
	os.RemoveAll(shared.env.dir)
	shared.env = nil
}

// VerifyTestMain runs a package's tests, stops the shared cluster, and then
// fails the package when a test left a goroutine behind (goleak), for
// packages whose tests may share the cluster: the cluster's own
// goroutines end only when it stops.
func VerifyTestMain(m *testing.M) {
	code := m.Run()
	StopSharedCluster()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: a test left goroutines behind: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Main runs a package's tests and stops the shared cluster, for packages
// whose tests may share it and that do not check for goroutine leaks.
func Main(m *testing.M) {
	code := m.Run()
	StopSharedCluster()
	os.Exit(code)
}
