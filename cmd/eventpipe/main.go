// Command eventpipe keeps Kubernetes Events out of etcd: see the README.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventpipe/eventpipe/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
