package writerha

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

// TestMain removes the eventpipe binary the tests built and fails the
// package when a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		devtest.RemoveBinary()
		os.Exit(code)
	}))
}
