package roles

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/eventpipe/eventpipe/internal/etcdfront"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/tenancy"
)

// EtcdOptions configure the etcd front role.
type EtcdOptions struct {
	// Addr is where the front listens.
	Addr string
	// Scope is the scope of clients no client-scope mapping names ("" for
	// none: every client must be mapped).
	Scope string
	// ClientScopes are "CN=Type/Name" mappings of client certificates.
	ClientScopes []string
	// CertFile and KeyFile serve TLS; ClientCAFile requires and verifies
	// client certificates. Outside dev mode all three are required unless
	// Insecure is set.
	CertFile, KeyFile, ClientCAFile string
	Insecure                        bool
	Front                           etcdfront.Config
	Tiers                           TiersOptions
}

// DefaultEtcdOptions returns the documented defaults.
func DefaultEtcdOptions() EtcdOptions {
	return EtcdOptions{Addr: ":2379", Front: etcdfront.DefaultConfig(), Tiers: DefaultTiersOptions()}
}

// AddFlags registers the options on fs.
func (o *EtcdOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Addr, "etcd.addr", o.Addr, "address the etcd API listens on (kube-apiserver's --etcd-servers-overrides=/events#https://HOST:PORT)")
	fs.StringVar(&o.Scope, "etcd.scope", o.Scope,
		"scope (Type/Name, or Platform) of the Events of a client no --etcd.client-scope names; empty refuses such clients")
	fs.StringSliceVar(&o.ClientScopes, "etcd.client-scope", o.ClientScopes,
		"CN=Type/Name: the Events of the kube-apiserver whose client certificate has common name CN go to that scope (repeatable)")
	fs.StringVar(&o.CertFile, "etcd.tls-cert-file", o.CertFile, "serving certificate (PEM)")
	fs.StringVar(&o.KeyFile, "etcd.tls-key-file", o.KeyFile, "serving key (PEM)")
	fs.StringVar(&o.ClientCAFile, "etcd.client-ca-file", o.ClientCAFile,
		"CA bundle (PEM) that signs kube-apiserver's --etcd-certfile; client certificates are then required")
	fs.BoolVar(&o.Insecure, "etcd.insecure", o.Insecure, "serve without TLS and client certificates (loopback and tests only)")
	fs.StringVar(&o.Front.EtcdPrefix, "etcd.prefix", o.Front.EtcdPrefix, "kube-apiserver's --etcd-prefix; Events are the keys under PREFIX/events/")
	fs.StringVar(&o.Front.MediaType, "etcd.storage-media-type", o.Front.MediaType,
		"kube-apiserver's --storage-media-type: the encoding values are returned in ("+etcdfront.MediaTypeProtobuf+" or "+etcdfront.MediaTypeJSON+")")
	fs.DurationVar(&o.Front.Window, "etcd.window", o.Front.Window,
		"how far back lists look for live events; must exceed kube-apiserver's --event-ttl by its lease reuse (5%, at most 1m)")
	fs.DurationVar(&o.Front.ProgressInterval, "etcd.progress-interval", o.Front.ProgressInterval,
		"how often an idle watch that asked for progress notifications gets one")
	fs.IntVar(&o.Front.MaxRequestBytes, "etcd.max-request-bytes", o.Front.MaxRequestBytes, "largest value accepted, as etcd's --max-request-bytes")
	o.Tiers.AddFlags(fs)
}

// Validate returns every problem with o.
func (o *EtcdOptions) Validate() []error {
	errs := o.Front.Validate()
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--etcd.addr %q must be host:port or :port", o.Addr))
	}
	if _, _, err := o.scopes(); err != nil {
		errs = append(errs, err)
	}
	if !o.Insecure && (o.CertFile == "" || o.KeyFile == "" || o.ClientCAFile == "") {
		errs = append(errs, errors.New("--etcd.tls-cert-file, --etcd.tls-key-file and --etcd.client-ca-file are required "+
			"(kube-apiserver authenticates to etcd with --etcd-certfile); --etcd.insecure serves without them"))
	}
	return append(errs, o.Tiers.Validate()...)
}

// scopes reads --etcd.scope and --etcd.client-scope.
func (o *EtcdOptions) scopes() (scope.Scope, map[string]scope.Scope, error) {
	var def scope.Scope
	if o.Scope != "" {
		sc, err := scope.Parse(o.Scope)
		if err != nil {
			return def, nil, fmt.Errorf("--etcd.scope: %w", err)
		}
		def = sc
	}
	m := map[string]scope.Scope{}
	for _, cs := range o.ClientScopes {
		cn, s, ok := strings.Cut(cs, "=")
		if !ok || cn == "" {
			return def, nil, fmt.Errorf("--etcd.client-scope %q: want CN=Type/Name", cs)
		}
		sc, err := scope.Parse(s)
		if err != nil {
			return def, nil, fmt.Errorf("--etcd.client-scope %q: %w", cs, err)
		}
		m[cn] = sc
	}
	return def, m, nil
}

// tlsConfig loads the serving certificate and the client CA.
func (o *EtcdOptions) tlsConfig() (*tls.Config, error) {
	if o.Insecure && o.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--etcd.tls-cert-file/--etcd.tls-key-file: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd.client-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd.client-ca-file %s: no PEM certificate in it", o.ClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Etcd is the etcd front role: kube-apiserver's Events store.
type Etcd struct {
	c          *Conns
	log        *slog.Logger
	front      *etcdfront.Server
	listener   net.Listener
	background []func(context.Context)
}

// NewEtcd builds the etcd front on c, whose store must be open, and
// listens on o.Addr. It reads the writer's watermark and shares the log
// with the other roles; reg receives its metrics.
func NewEtcd(ctx context.Context, c *Conns, o EtcdOptions, reg prometheus.Registerer, log *slog.Logger) (*Etcd, error) {
	if err := joinErrors(o.Validate()); err != nil {
		return nil, err
	}
	if c.Stream.Retention < o.Front.Window {
		// Creates then look names up in ClickHouse once the log trims
		// (etcdfront: logCovers), which costs most of a create.
		log.Warn("etcd front: --stream.retention is shorter than --etcd.window; creates will read the index once the stream trims",
			"stream.retention", c.Stream.Retention, "etcd.window", o.Front.Window)
	}
	def, byCN, _ := o.scopes()
	cfg := o.Front
	cfg.Scope, cfg.ClientScopes = def, byCN
	var err error
	if cfg.TLS, err = o.tlsConfig(); err != nil {
		return nil, err
	}
	fl, err := c.frontDoorLog(ctx, log)
	if err != nil {
		return nil, err
	}
	state, err := etcdfront.OpenState(ctx, c.JS, c.Stream.Replicas)
	if err != nil {
		return nil, err
	}
	// The tiers apply per scope as for the API server's writers: a
	// kube-apiserver is a tenant caller of its scope.
	tiers, background, err := c.tiersAdmission(ctx, o.Tiers, fl.watermark.Load, tenancy.NewResolver(nil), reg, log)
	if err != nil {
		return nil, err
	}
	front, err := etcdfront.New(cfg, etcdfront.Deps{
		Log: fl.log, Index: c.Store, Watermark: fl.watermark, State: state, Admission: tiers, Metrics: etcdfront.NewMetrics(reg), Logger: log,
		DiskUsage: func(ctx context.Context) (uint64, error) {
			_, b, err := c.Store.DiskUsage(ctx)
			return b, err
		},
	})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("--etcd.addr: %w", err)
	}
	return &Etcd{c: c, log: log, front: front, listener: l, background: background}, nil
}

// Addr is where the front listens.
func (e *Etcd) Addr() string { return e.listener.Addr().String() }

// Run serves until ctx ends, or until the EVENTS stream is recreated under
// it (eventlog.ErrStreamRecreated).
func (e *Etcd) Run(ctx context.Context) error {
	return e.c.runGuarded(ctx, e.log, func(ctx context.Context) error {
		for _, f := range e.background {
			go f(ctx)
		}
		return e.front.Serve(ctx, e.listener)
	})
}
