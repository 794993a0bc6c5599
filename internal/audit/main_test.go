package audit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// indexer's must stop with its context.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
