// Command image builds eventpipe's container image without a container
// daemon: it cross-compiles a static cmd/eventpipe for each platform and
// writes one tarball that docker load, podman load and crane push accept.
// `make image` runs it; see build.go for what the image holds and why the
// tarball has the shape it has.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	o := Options{Log: os.Stderr}
	fs := pflag.NewFlagSet("image", pflag.ContinueOnError)
	o.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return Build(ctx, o)
}
