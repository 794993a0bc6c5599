package clickhouse_test

import (
	"testing"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
)

// TestMain stops the cluster the tests share when they run in cluster mode
// (storetest.ModeEnv), and fails the package when a test leaves a
// goroutine behind.
func TestMain(m *testing.M) {
	chtest.VerifyTestMain(m)
}
