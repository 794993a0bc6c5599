package conformance

import (
	"testing"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
)

// TestMain stops the ClickHouse cluster the stacks share when the suite
// runs in cluster mode (storetest.ModeEnv).
func TestMain(m *testing.M) {
	chtest.Main(m)
}
