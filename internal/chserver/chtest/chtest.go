// Package chtest starts a private clickhouse-server for tests.
package chtest

import (
	"context"
	"errors"
	"os/exec"
	"testing"

	"github.com/eventpipe/eventpipe/internal/chserver"
	"github.com/eventpipe/eventpipe/internal/testenv"
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
