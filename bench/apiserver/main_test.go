// Package apiserverbench measures eventpipe's Kubernetes Events API side by
// side with kube-apiserver 1.37 + etcd 3.4 on the same machine, with the
// same load client, in the same run (issue 3; the targets are in
// bench/README.md's results table):
// single-event creates/s (BenchmarkCreate), list latency for one namespace
// and for all namespaces at equal data (BenchmarkList), and create→watch
// delivery latency at 1,000 events/s with 100 watchers (BenchmarkWatch).
// bench/README.md has the commands and the recorded numbers.
package apiserverbench

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/eventpipe/eventpipe/internal/runtimetune"
)

var goRuntime = flag.String("apibench.runtime", "eventpipe",
	"Go runtime settings of this process: eventpipe (what the eventpipe binary applies: GC target 300, 32 KiB starting stacks) or go (Go's defaults)")

// TestMain applies eventpipe's runtime settings to this process, which
// holds the load client in every run and eventpipe's server in its runs:
// eventpipe gets the settings its binary ships with, and the load client
// gets the same ones for both servers, so its cost does not differ between
// them. kube-apiserver runs in its own process with its own defaults.
func TestMain(m *testing.M) {
	flag.Parse()
	switch *goRuntime {
	case "eventpipe":
		runtimetune.Apply(context.Background(), runtimetune.DefaultOptions(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	case "go":
	default:
		slog.Error("-apibench.runtime: want eventpipe or go", "got", *goRuntime)
		os.Exit(2)
	}
	os.Exit(m.Run())
}
