package etcdbench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/eventpipe/eventpipe/internal/runtimetune"
)

// TestMain applies the Go runtime settings the eventpipe binary applies
// (runtimetune), as bench/apiserver does: eventpipe runs in this process in
// its setups, and the load client gets the same settings in every setup.
func TestMain(m *testing.M) {
	runtimetune.Apply(context.Background(), runtimetune.DefaultOptions(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}
