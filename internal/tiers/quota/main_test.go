package quota_test

import (
	"testing"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// goroutine this package starts must be stopped by whoever started it. It
// also stops the ClickHouse cluster the tests share in cluster mode
// (storetest.ModeEnv).
func TestMain(m *testing.M) {
	chtest.VerifyTestMain(m)
}
