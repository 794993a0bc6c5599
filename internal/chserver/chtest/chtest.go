// Package chtest starts a private clickhouse-server for tests.
package chtest

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/eventpipe/eventpipe/internal/chserver"
)

// ForTest starts a server for one test (or, from TestMain, a package) in a
// temporary directory and stops it at cleanup. When clickhouse-server is not
// installed it skips the test, unless CI=true, where a missing dependency is a
// failure, never a silent skip.
func ForTest(tb testing.TB) *chserver.Server {
	tb.Helper()
	s, err := chserver.Start(context.Background(), chserver.Options{Dir: tb.TempDir()})
	if errors.Is(err, chserver.ErrNotInstalled) {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true and %v", err)
		}
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Stop() })
	return s
}
