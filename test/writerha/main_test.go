package writerha

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

// TestMain removes the binary eventpipeBinary built and fails the package
// when a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if binPath != "" {
			_ = os.RemoveAll(filepath.Dir(binPath))
		}
		os.Exit(code)
	}))
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// eventpipeBinary builds ./cmd/eventpipe once per test binary: writers run
// as processes of their own so that they can be killed with SIGKILL and
// paused with SIGSTOP.
func eventpipeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "eventpipe-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath, buildErr = devtest.BuildEventpipe(dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}
