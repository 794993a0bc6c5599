package roles

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/exporter"
)

// Exporter is the exporter role: it copies a source cluster's Events into
// EVENTS.
type Exporter struct {
	exp *exporter.Exporter
}

// NewExporter builds the exporter on c (no store needed) for the source
// cluster cfg names. reg receives its metrics.
func NewExporter(ctx context.Context, c *Conns, cfg exporter.Config, reg prometheus.Registerer, log *slog.Logger) (*Exporter, error) {
	if err := joinErrors(cfg.Validate()); err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = cfg.Kubeconfig
	if cfg.Kubeconfig == "" {
		// In-cluster unless told otherwise; never a developer's
		// ~/.kube/config by surprise.
		rules = &clientcmd.ClientConfigLoadingRules{}
	}
	kc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: cfg.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("source cluster client (--exporter.kubeconfig %q): %w", cfg.Kubeconfig, err)
	}
	kc.QPS, kc.Burst = cfg.QPS, cfg.Burst
	kc.UserAgent = "eventpipe-exporter"
	cs, err := kubernetes.NewForConfig(kc)
	if err != nil {
		return nil, fmt.Errorf("source cluster client: %w", err)
	}
	reader, err := eventlog.NewReader(ctx, c.JS)
	if err != nil {
		return nil, err
	}
	exp, err := exporter.New(ctx, cfg, cs, c.JS, exportLog{Publisher: eventlog.NewPublisher(c.JS), Reader: reader}, reg, log)
	if err != nil {
		return nil, err
	}
	return &Exporter{exp: exp}, nil
}

// Healthy reports why the exporter is stuck, or nil; see exporter.Exporter.
func (e *Exporter) Healthy() error { return e.exp.Healthy() }

// Ready is Healthy, and, for the exporting replica, every watch open.
func (e *Exporter) Ready() error { return e.exp.Ready() }

// Run exports until ctx ends, as the leader when leader election is on.
func (e *Exporter) Run(ctx context.Context) error { return e.exp.RunElected(ctx) }

// exportLog joins the log's publisher and reader into exporter.Log.
type exportLog struct {
	*eventlog.Publisher
	*eventlog.Reader
}
