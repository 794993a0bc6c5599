package exporter

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// Config is the exporter's configuration.
type Config struct {
	// Kubeconfig is the source cluster's kubeconfig; empty means in-cluster.
	Kubeconfig string
	// Context is the kubeconfig context to use; empty means its current one.
	Context string
	// QPS and Burst are the client's rate limit towards the source.
	QPS   float32
	Burst int
	// Namespaces limits the export to these namespaces; empty means all.
	Namespaces []string
	// ClusterName names the source cluster: the source-cluster label, the
	// checkpoint keys and the lease carry it.
	ClusterName string
	// ScopeType and ScopeName are the tenant every exported Event belongs
	// to, in the canonical case of package scope.
	ScopeType, ScopeName string
	// APIGroup forces "events.k8s.io" or "core"; empty picks events.k8s.io/v1
	// when the source serves it.
	APIGroup string
	// MaxInFlight bounds the states between the watch and JetStream's
	// acknowledgement.
	MaxInFlight int
	// Publishers is the number of concurrent publishers. States of one event
	// always go through the same one, in order.
	Publishers int
	// ListPageSize is the limit of one list page.
	ListPageSize int64
	// CheckpointInterval is how often the resume point is written when it
	// has moved.
	CheckpointInterval time.Duration
	// StuckAfter is how long the watch may be disconnected, or a publish
	// unacknowledged, before /healthz and /readyz fail.
	StuckAfter time.Duration
	// LeaderElect turns on leader election with a Lease in the source
	// cluster; only the leader exports.
	LeaderElect bool
	// LeaseNamespace and LeaseName locate the Lease; LeaseName defaults to
	// eventpipe-exporter-<cluster-name>.
	LeaseNamespace, LeaseName string
	// Identity is this replica's name in the Lease; defaults to the host
	// name and a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's leader
	// election timings.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// SourceEventTTL is the source kube-apiserver's --event-ttl: a DELETED
	// that arrives at least this long after the event's last write is the
	// source expiring it, not a delete, and is not exported (keeping events
	// past the source's TTL is what eventpipe is for). 0 exports every
	// DELETED as a delete.
	SourceEventTTL time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		QPS: 20, Burst: 40,
		ScopeType:          scope.TypePlatform,
		MaxInFlight:        1024,
		Publishers:         32,
		ListPageSize:       500,
		CheckpointInterval: time.Second,
		StuckAfter:         2 * time.Minute,
		LeaseNamespace:     "kube-system",
		LeaseDuration:      15 * time.Second,
		RenewDeadline:      10 * time.Second,
		RetryPeriod:        2 * time.Second,
		SourceEventTTL:     time.Hour,
	}
}

// AddFlags adds the exporter's flags to fs.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Kubeconfig, "exporter.kubeconfig", c.Kubeconfig, "kubeconfig of the source cluster; empty: the in-cluster service account")
	fs.StringVar(&c.Context, "exporter.context", c.Context, "kubeconfig context; empty: the current context")
	fs.Float32Var(&c.QPS, "exporter.kube-qps", c.QPS, "client rate limit towards the source kube-apiserver, requests/s (watches count once; lists once per page)")
	fs.IntVar(&c.Burst, "exporter.kube-burst", c.Burst, "client burst towards the source kube-apiserver, requests")
	fs.StringSliceVar(&c.Namespaces, "exporter.namespaces", c.Namespaces, "namespaces to export, comma-separated; empty: all namespaces")
	fs.StringVar(&c.ClusterName, "exporter.cluster-name", c.ClusterName, "name of the source cluster (a DNS subdomain): the eventpipe.io/source-cluster label, checkpoint keys and lease name carry it; required")
	fs.StringVar(&c.ScopeType, "exporter.scope-type", c.ScopeType, "tenant type of every exported event, exact case: Platform, Organization, Project or User")
	fs.StringVar(&c.ScopeName, "exporter.scope-name", c.ScopeName, "tenant name; empty for Platform, required otherwise")
	fs.StringVar(&c.APIGroup, "exporter.api-group", c.APIGroup, "Events API to read: events.k8s.io or core; empty: events.k8s.io/v1 when the source serves it")
	fs.IntVar(&c.MaxInFlight, "exporter.max-in-flight", c.MaxInFlight, "most event states between the watch and JetStream's acknowledgement; the watch waits when reached")
	fs.IntVar(&c.Publishers, "exporter.publishers", c.Publishers, "concurrent JetStream publishers (states of one event stay in order on one)")
	fs.Int64Var(&c.ListPageSize, "exporter.list-page-size", c.ListPageSize, "events per list page on start and after a 410")
	fs.DurationVar(&c.CheckpointInterval, "exporter.checkpoint-interval", c.CheckpointInterval, "how often the resume point is written to JetStream KV when it moved")
	fs.DurationVar(&c.StuckAfter, "exporter.stuck-after", c.StuckAfter, "/healthz and /readyz fail when the watch is down or a publish is unacknowledged for this long")
	fs.BoolVar(&c.LeaderElect, "exporter.leader-elect", c.LeaderElect, "elect a leader through a coordination.k8s.io Lease in the source cluster; only the leader exports")
	fs.StringVar(&c.LeaseNamespace, "exporter.leader-elect.namespace", c.LeaseNamespace, "namespace of the Lease")
	fs.StringVar(&c.LeaseName, "exporter.leader-elect.name", c.LeaseName, "name of the Lease; empty: eventpipe-exporter-<cluster-name>")
	fs.StringVar(&c.Identity, "exporter.leader-elect.identity", c.Identity, "this replica's identity in the Lease; empty: host name and a random suffix")
	fs.DurationVar(&c.LeaseDuration, "exporter.leader-elect.lease-duration", c.LeaseDuration, "how long a standby waits after the last renewal before it takes over")
	fs.DurationVar(&c.RenewDeadline, "exporter.leader-elect.renew-deadline", c.RenewDeadline, "how long the leader retries renewing before it gives up leadership")
	fs.DurationVar(&c.RetryPeriod, "exporter.leader-elect.retry-period", c.RetryPeriod, "how often candidates try to acquire or renew the Lease")
	fs.DurationVar(&c.SourceEventTTL, "exporter.source-event-ttl", c.SourceEventTTL,
		"the source kube-apiserver's --event-ttl: a DELETED arriving at least this long after the event's last write is the source expiring it, "+
			"which is not exported as a delete (eventpipe keeps the event); 0 exports every DELETED as a delete")
}

// Scope returns the configured tenant scope.
func (c *Config) Scope() scope.Scope { return scope.Scope{Type: c.ScopeType, Name: c.ScopeName} }

// Validate returns every problem with c.
func (c *Config) Validate() []error {
	var errs []error
	if c.ClusterName == "" {
		errs = append(errs, fmt.Errorf("--exporter.cluster-name is required"))
	}
	for _, msg := range validation.IsDNS1123Subdomain(c.ClusterName) {
		if c.ClusterName != "" {
			errs = append(errs, fmt.Errorf("--exporter.cluster-name %q: %s", c.ClusterName, msg))
		}
	}
	if err := c.Scope().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--exporter.scope-type/--exporter.scope-name: %w", err))
	}
	if c.SourceEventTTL < 0 {
		errs = append(errs, fmt.Errorf("--exporter.source-event-ttl must not be negative, got %s", c.SourceEventTTL))
	}
	if c.APIGroup != "" && c.APIGroup != "events.k8s.io" && c.APIGroup != "core" {
		errs = append(errs, fmt.Errorf("--exporter.api-group %q: allowed: events.k8s.io, core, or empty", c.APIGroup))
	}
	seen := map[string]bool{}
	for _, ns := range c.Namespaces {
		for _, msg := range apimachineryvalidation.ValidateNamespaceName(ns, false) {
			errs = append(errs, fmt.Errorf("--exporter.namespaces %q: %s", ns, msg))
		}
		if seen[ns] {
			errs = append(errs, fmt.Errorf("--exporter.namespaces names %q twice", ns))
		}
		seen[ns] = true
	}
	if c.QPS == 0 || c.Burst < 1 && c.QPS > 0 {
		errs = append(errs, fmt.Errorf("--exporter.kube-qps must be positive (or negative for no limit) and --exporter.kube-burst at least 1, got %g and %d", c.QPS, c.Burst))
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 1<<20 {
		errs = append(errs, fmt.Errorf("--exporter.max-in-flight must be between 1 and 1048576, got %d", c.MaxInFlight))
	}
	if c.Publishers < 1 || c.Publishers > 1024 {
		errs = append(errs, fmt.Errorf("--exporter.publishers must be between 1 and 1024, got %d", c.Publishers))
	}
	if c.ListPageSize < 1 {
		errs = append(errs, fmt.Errorf("--exporter.list-page-size must be positive, got %d", c.ListPageSize))
	}
	if c.CheckpointInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--exporter.checkpoint-interval must be at least 10ms, got %s", c.CheckpointInterval))
	}
	if c.StuckAfter < time.Second {
		errs = append(errs, fmt.Errorf("--exporter.stuck-after must be at least 1s, got %s", c.StuckAfter))
	}
	if c.LeaderElect {
		for _, msg := range validation.IsDNS1123Label(c.LeaseNamespace) {
			errs = append(errs, fmt.Errorf("--exporter.leader-elect.namespace %q: %s", c.LeaseNamespace, msg))
		}
		if c.LeaseName != "" {
			for _, msg := range validation.IsDNS1123Subdomain(c.LeaseName) {
				errs = append(errs, fmt.Errorf("--exporter.leader-elect.name %q: %s", c.LeaseName, msg))
			}
		}
		if !(c.LeaseDuration > c.RenewDeadline && c.RenewDeadline > c.RetryPeriod && c.RetryPeriod > 0) {
			errs = append(errs, fmt.Errorf("leader election needs --exporter.leader-elect.lease-duration > --exporter.leader-elect.renew-deadline > --exporter.leader-elect.retry-period > 0, got %s, %s, %s",
				c.LeaseDuration, c.RenewDeadline, c.RetryPeriod))
		}
	}
	return errs
}

// leaseName is the Lease's name.
func (c *Config) leaseName() string {
	if c.LeaseName != "" {
		return c.LeaseName
	}
	return "eventpipe-exporter-" + c.ClusterName
}
