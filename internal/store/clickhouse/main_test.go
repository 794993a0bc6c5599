package clickhouse_test

import (
	"os"
	"testing"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
)

// TestMain stops the cluster the tests share when they run in cluster mode
// (storetest.ModeEnv).
func TestMain(m *testing.M) {
	code := m.Run()
	chtest.StopSharedCluster()
	os.Exit(code)
}
