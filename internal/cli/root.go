// Package cli holds eventpipe's subcommands: one file per command, each
// registering the flags of the components it runs and validating them all
// before it starts anything. The roles themselves are built by package
// roles, which dev mode calls too; a command adds what belongs to a process
// of its own: connections, /metrics, /healthz and /readyz.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/eventpipe/eventpipe/internal/runtimetune"
)

// Run executes the command line args and returns the process exit code.
// Errors are printed once, as a message, never with a stack trace or usage
// dump.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// What a command starts for its whole run (the stack ballast, for one)
	// ends when Run returns.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		// One problem per line: the first after the program name, the rest
		// indented under it.
		lines := strings.Split(err.Error(), "\n")
		fmt.Fprintf(stderr, "eventpipe: %s\n", lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(stderr, "  %s\n", l)
		}
		return 1
	}
	return 0
}

type globalOptions struct {
	logLevel string
	runtime  runtimetune.Options
	stdout   io.Writer
	stderr   io.Writer
}

func (g *globalOptions) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: allowed: debug, info, warn, error", g.logLevel)
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl})), nil
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{logLevel: "info", runtime: runtimetune.DefaultOptions(), stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "eventpipe",
		Short:         "Keep Kubernetes Events out of etcd: JetStream log, ClickHouse index, Kubernetes API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		log, err := g.logger()
		if err != nil {
			return err
		}
		if err := validate(g.runtime.Validate()); err != nil {
			return err
		}
		runtimetune.Apply(cmd.Context(), g.runtime, log)
		// k8s.io/apiserver logs through klog: send it to the same logger,
		// so --log-level and the format apply to it too.
		klog.SetSlogLogger(log)
		return nil
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", g.logLevel, "log level: debug, info, warn or error")
	g.runtime.AddFlags(root.PersistentFlags())
	root.AddCommand(newVersionCmd(g), newMigrateCmd(g), newWriterCmd(g), newAPIServerCmd(g), newDevCmd(g), newExportCmd(g), newEtcdCmd(g))
	root.AddCommand(newActivityProcessorCmd(g), newActivitiesCmd(g)) // activity.go
	return root
}

// validate joins every component's problems into one error.
func validate(lists ...[]error) error {
	var all []error
	for _, l := range lists {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return nil
	}
	return fmt.Errorf("invalid flags:\n%w", errors.Join(all...))
}
