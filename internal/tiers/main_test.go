package tiers_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// goroutine this package starts must be stopped by whoever started it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
