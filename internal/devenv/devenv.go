// Package devenv is `eventpipe dev`: every role in one process, on an
// embedded JetStream server and a clickhouse-server child process, with a
// simulated cluster writing realistic events. Data lives in one directory and
// survives restarts.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/chserver"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/generator"
	"github.com/eventpipe/eventpipe/internal/natsserver"
	"github.com/eventpipe/eventpipe/internal/roles"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/writer"
)

// Tenants are the demo's simulated tenants.
var Tenants = []scope.Scope{
	{Type: scope.TypeProject, Name: "alpha"},
	{Type: scope.TypeProject, Name: "beta"},
}

// EtcdScope is where a kube-apiserver pointed at dev mode's etcd front
// stores its Events.
var EtcdScope = scope.Scope{Type: scope.TypeProject, Name: "cluster"}

// Options configure dev mode.
type Options struct {
	DataDir string
	// NATSPort is the embedded server's port; -1 picks a free one.
	NATSPort int
	// NATSURL, when set, is an external JetStream (a cluster's URLs,
	// comma-separated) used instead of the embedded server: tests run
	// dev mode's roles on a 3-node cluster that way.
	NATSURL string
	// NATSSyncAlways makes the embedded JetStream fsync every write before
	// acknowledging it (natsserver.Options.SyncAlways).
	NATSSyncAlways bool
	// Demo turns the simulated cluster on.
	Demo bool
	// DemoRate is the simulated cluster's event states per second.
	DemoRate float64
	// DemoHistory and DemoBackfill: on first start, DemoBackfill states
	// spread over the last DemoHistory, so there is history to query.
	DemoHistory  time.Duration
	DemoBackfill int
	Stream       eventlog.Config
	Writer       writer.Config
	// Registry receives every role's metrics, each labelled with its role;
	// may be nil.
	Registry prometheus.Registerer
	// APIServerPort is the API server's port at 127.0.0.1; 0 picks a free one.
	APIServerPort int
	// Activities runs the activity pipeline (processor, indexer, built-in
	// policies) and serves the activity resources.
	Activities bool
	// EtcdPort is the etcd front's port at 127.0.0.1; 0 picks a free one,
	// -1 runs no etcd front.
	EtcdPort int
	// ConfigureAPIServer, when set, adjusts the API server's options after
	// dev mode has set them (tests use it for aggregated authentication).
	ConfigureAPIServer func(*apiserver.Options)
	// ClickHouse, when set, is the store dev mode uses instead of starting
	// a clickhouse-server of its own: tests run the whole stack on a
	// ClickHouse cluster this way (storetest.ModeEnv).
	ClickHouse *chstore.Config
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		DataDir: ".eventpipe", NATSPort: -1, Demo: true, DemoRate: 20, Activities: true,
		DemoHistory: 7 * 24 * time.Hour, DemoBackfill: 20000,
		Stream: eventlog.DefaultConfig(), Writer: writer.DefaultConfig(),
	}
}

// Validate returns every problem with o.
func (o *Options) Validate() []error {
	var errs []error
	if o.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if o.NATSPort < -1 || o.NATSPort > 65535 {
		errs = append(errs, fmt.Errorf("--nats.port must be -1 (any free port) or 0-65535, got %d", o.NATSPort))
	}
	if o.DemoRate <= 0 || o.DemoRate > 100000 {
		errs = append(errs, fmt.Errorf("--demo.rate must be above 0 and at most 100000 events/s, got %g", o.DemoRate))
	}
	if o.DemoBackfill < 0 {
		errs = append(errs, fmt.Errorf("--demo.backfill must be 0 or more, got %d", o.DemoBackfill))
	}
	if o.APIServerPort < 0 || o.APIServerPort > 65535 {
		errs = append(errs, fmt.Errorf("--apiserver.port must be 0 (any free port) or 1-65535, got %d", o.APIServerPort))
	}
	if o.EtcdPort < -1 || o.EtcdPort > 65535 {
		errs = append(errs, fmt.Errorf("--etcd.port must be -1 (none), 0 (any free port) or 1-65535, got %d", o.EtcdPort))
	}
	if o.DemoHistory < time.Minute {
		errs = append(errs, fmt.Errorf("--demo.history must be at least 1m, got %s", o.DemoHistory))
	}
	errs = append(errs, o.Stream.Validate()...)
	errs = append(errs, o.Writer.Validate()...)
	return errs
}

// Env is a running dev environment.
type Env struct {
	NATSURL        string
	ClickHouseAddr string
	Database       string
	Store          *chstore.Store
	JS             jetstream.JetStream
	Writer         *writer.Writer
	EnvFile        string
	APIServerURL   string
	// UIURL opens the web UI as the platform admin (token in the fragment).
	UIURL string
	// EtcdEndpoint is the etcd front's URL, "" when it does not run.
	EtcdEndpoint string
	// AuditWebhookConfig is a file for kube-apiserver's
	// --audit-webhook-config-file: its audit records then come into
	// EtcdScope.
	AuditWebhookConfig string
	Kubeconfig         string
	// TenantKubeconfigs are kubeconfigs of users inside the demo tenants.
	TenantKubeconfigs []TenantKubeconfig
}

// Run starts everything, calls ready once the demo data is queryable, and
// blocks until ctx ends; then it stops everything, children included.
func Run(ctx context.Context, o Options, log *slog.Logger, ready func(*Env)) (err error) {
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return fmt.Errorf("resolve --data-dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create --data-dir %s: %w", dir, err)
	}

	natsURL := o.NATSURL
	if natsURL == "" {
		ns, err := natsserver.Start(natsserver.Options{StoreDir: filepath.Join(dir, "nats"), Port: o.NATSPort, SyncAlways: o.NATSSyncAlways})
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		natsURL = ns.ClientURL()
		log.Info("embedded JetStream started", "url", natsURL)
	}

	storeCfg := chstore.DefaultConfig()
	var chDone <-chan struct{} // nil: not ours to watch
	chLog := ""
	if o.ClickHouse != nil {
		storeCfg = *o.ClickHouse
	} else {
		ch, err := chserver.Start(ctx, chserver.Options{Dir: filepath.Join(dir, "clickhouse")})
		if err != nil {
			return err
		}
		defer func() { _ = ch.Stop() }()
		log.Info("clickhouse-server started", "addr", ch.Addr, "pid", ch.PID())
		storeCfg.Addr, chDone, chLog = ch.Addr, ch.Done(), filepath.Join(ch.Dir(), "log", "err.log")
	}

	natsCfg := eventlog.DefaultClientConfig()
	natsCfg.URL = natsURL
	c, err := roles.Connect(ctx, "eventpipe-dev", natsCfg, o.Stream)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.OpenStore(ctx, storeCfg); err != nil {
		return err
	}
	tiers, err := tiersFile(dir) // tiers.go
	if err != nil {
		return err
	}

	// The roles, as their subcommands build them, with dev mode's settings.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 5)
	wo := roles.DefaultWriterOptions()
	wo.Writer, wo.TiersConfig = o.Writer, tiers
	// One dev process per data directory and JetStream: its identity is
	// fixed, so that after a kill -9 the restarted process takes its own
	// lease back at once instead of waiting for it to expire.
	wo.Identity = "eventpipe-dev"
	w, err := roles.NewWriter(ctx, c, wo, roleRegistry(o.Registry, "writer"), log)
	if err != nil {
		return err
	}
	go func() { errc <- w.Run(ctx) }()

	env := &Env{NATSURL: natsURL, ClickHouseAddr: storeCfg.Addr, Database: storeCfg.Database,
		Store: c.Store, JS: c.JS, Writer: w.Writer(), EnvFile: filepath.Join(dir, "dev.env")}
	pub := &logSink{pub: eventlog.NewPublisher(c.JS)}

	if o.Activities {
		p, err := roles.NewActivityProcessor(ctx, c, roles.DefaultActivityProcessorOptions(), roleRegistry(o.Registry, "activity-processor"), log)
		if err != nil {
			return err
		}
		go func() {
			if err := p.Run(ctx); err != nil && ctx.Err() == nil {
				select {
				case errc <- err:
				case <-ctx.Done():
				}
			}
		}()
	}
	api, err := startAPIServer(ctx, dir, o, c, tiers, log) // api.go
	if err != nil {
		return err
	}
	env.APIServerURL, env.Kubeconfig, env.TenantKubeconfigs, env.AuditWebhookConfig = api.url, api.kubeconfig, api.tenantKubeconfigs, api.auditWebhook
	env.UIURL = api.uiURL
	if o.EtcdPort >= 0 {
		eo := roles.DefaultEtcdOptions()
		eo.Addr, eo.Insecure, eo.Scope, eo.Tiers.Config = fmt.Sprintf("127.0.0.1:%d", o.EtcdPort), true, EtcdScope.String(), tiers
		e, err := roles.NewEtcd(ctx, c, eo, roleRegistry(o.Registry, "etcd"), log)
		if err != nil {
			return err
		}
		env.EtcdEndpoint = "http://" + e.Addr()
		go func() {
			if err := e.Run(ctx); err != nil {
				errc <- fmt.Errorf("etcd front: %w", err)
			}
		}()
	}
	go func() {
		if err := <-api.done; err != nil {
			errc <- fmt.Errorf("API server: %w", err)
		}
	}()

	if o.Demo {
		gen, err := generator.New(generator.Config{Tenants: Tenants, Rate: o.DemoRate, Seed: time.Now().UnixNano()})
		if err != nil {
			return err
		}
		// History goes straight into the log, as a bulk import would: through
		// the API it would take longer than start-up may. Live events then
		// come through the API like any controller's.
		if err := backfillOnce(ctx, gen, c.Store, pub, o, log); err != nil {
			return err
		}
		apiSink, err := newAPISink(api.kubeconfig)
		if err != nil {
			return err
		}
		go func() { errc <- gen.Run(ctx, apiSink) }()
	}
	// Ready once everything published so far is queryable.
	if err := w.Writer().WaitFor(ctx, pub.last.Load()); err != nil {
		return nil // ctx ended during start-up
	}
	if err := writeEnvFile(env); err != nil {
		return err
	}
	if ready != nil {
		ready(env)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		return err
	case <-chDone:
		return errors.New("clickhouse-server exited unexpectedly; see " + chLog)
	}
}

// backfillOnce writes demo history the first time a data directory is used.
func backfillOnce(ctx context.Context, gen *generator.Generator, store *chstore.Store, sink *logSink, o Options, log *slog.Logger) error {
	if o.DemoBackfill == 0 {
		return nil
	}
	n, err := store.CountLatest(ctx, chstore.LatestFilter{})
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("keeping existing data; no backfill", "events", n)
		return nil
	}
	now := time.Now()
	log.Info("writing demo history", "states", o.DemoBackfill, "since", now.Add(-o.DemoHistory).Format(time.RFC3339))
	return gen.Backfill(ctx, sink, now.Add(-o.DemoHistory), now, o.DemoBackfill)
}

// writeEnvFile writes DIR/dev.env for shells and tests: source it.
func writeEnvFile(env *Env) error {
	lines := []string{
		"EVENTPIPE_NATS_URL=" + env.NATSURL,
		"EVENTPIPE_CLICKHOUSE_ADDR=" + env.ClickHouseAddr,
		"EVENTPIPE_CLICKHOUSE_DATABASE=" + env.Database,
		"EVENTPIPE_APISERVER_URL=" + env.APIServerURL,
		"EVENTPIPE_UI_URL=" + env.UIURL,
		"EVENTPIPE_ETCD_ENDPOINT=" + env.EtcdEndpoint,
		"EVENTPIPE_AUDIT_WEBHOOK_CONFIG=" + env.AuditWebhookConfig,
		"KUBECONFIG=" + env.Kubeconfig,
	}
	for _, k := range env.TenantKubeconfigs {
		// KUBECONFIG_PROJECT_ALPHA=DIR/kubeconfig-project-alpha
		lines = append(lines, "KUBECONFIG_"+strings.ToUpper(k.Scope.Type+"_"+k.Scope.Name)+"="+k.Path)
		lines = append(lines, "EVENTPIPE_UI_URL_"+strings.ToUpper(k.Scope.Type+"_"+k.Scope.Name)+"="+k.UIURL)
	}
	tmp := env.EnvFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", env.EnvFile, err)
	}
	return os.Rename(tmp, env.EnvFile)
}

// logSink publishes the simulated cluster's states straight into the log.
type logSink struct {
	pub  *eventlog.Publisher
	last atomicSeq
}

func (s *logSink) Write(ctx context.Context, op eventlog.Op, sc scope.Scope, ev *corev1.Event) error {
	rec := &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}, Op: op, Event: ev}
	seq, err := s.pub.Publish(ctx, rec, eventlog.PublishOptions{MsgID: stateID(op, ev)})
	if err != nil {
		return err
	}
	s.last.Store(seq)
	return nil
}

// stateID identifies one state of one event, so a retried publish of it is
// stored once: the uid, the operation and the count and time it shows.
func stateID(op eventlog.Op, ev *corev1.Event) string {
	count := ev.Count
	if ev.Series != nil {
		count = ev.Series.Count
	}
	return string(ev.UID) + "/" + op.String() + "/" + strconv.Itoa(int(count)) + "/" +
		strconv.FormatInt(chstore.LastObserved(ev, time.Time{}).UnixNano(), 10)
}

// roleRegistry is reg for one role: dev mode serves every role's metrics
// from one registry, so each carries a role label, as each process's
// metrics would carry their job's. Without it, the two roles that watch
// the tiers file would register the same metrics twice.
func roleRegistry(reg prometheus.Registerer, role string) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"role": role}, reg)
}
