package webhookbench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/eventpipe/eventpipe/internal/runtimetune"
)

// TestMain gives this process, which runs eventpipe's server and the
// posters, the Go runtime settings the eventpipe binary applies.
func TestMain(m *testing.M) {
	runtimetune.Apply(context.Background(), runtimetune.DefaultOptions(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}
