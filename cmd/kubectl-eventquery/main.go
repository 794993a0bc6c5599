// Command kubectl-eventquery is a kubectl plugin for EventQuery: search
// stored event history as `kubectl get events` would show it, e.g.
//
//	kubectl eventquery --since 7d --field-selector type=Warning -n prod
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newCommand(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
