package etcdfront

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/watchtail"
)

// Log is what the front needs from the EVENTS log (registry/event's
// LogReaderPublisher is one).
type Log interface {
	// Publish appends a state and returns its sequence; with an expected
	// last sequence it fails with eventlog.ErrConflict when the subject's
	// newest state is another.
	Publish(ctx context.Context, r *eventlog.Record, o eventlog.PublishOptions) (uint64, error)
	// Latest returns the newest state on subject, nil if the log holds none.
	Latest(ctx context.Context, subject string) (*eventlog.Record, error)
	// Bounds returns the first sequence still held and the last written.
	Bounds(ctx context.Context) (first, last uint64, err error)
	// Tail delivers the states on subjects matching filter, in order, from
	// sequence from on (see watchtail.Feed).
	Tail(ctx context.Context, filter string, from uint64) (watchtail.Feed[watchtail.State], error)
	// Range returns, in order, the states matching filter with sequences in
	// (after, upto], or eventlog.ErrRangeTooLong; they must not be modified.
	Range(ctx context.Context, filter string, after, upto uint64) ([]*eventlog.Record, error)
	// Oldest returns the first sequence still held and when it was stored.
	Oldest(ctx context.Context) (first uint64, stored time.Time, err error)
}

// Index is what the front needs from the index of committed states
// (*clickhouse.Store is one).
type Index interface {
	// RangeKeys returns the latest live states of a key range, in etcd's
	// key order; CountKeys counts them.
	RangeKeys(ctx context.Context, q chstore.KeyRange) ([]*eventlog.Record, error)
	CountKeys(ctx context.Context, q chstore.KeyRange) (uint64, error)
}

// Watermark is the writer's committed watermark: every state at or below
// it is in the Index.
type Watermark interface {
	Load() uint64
	WaitFor(ctx context.Context, seq uint64) error
}

// Admission applies the tiers' rate limits and quota to a write (see
// registry/event.Admission): Admit refuses with an error that says why;
// when it admits, done is called once with the publish's outcome.
type Admission interface {
	Admit(ctx context.Context, sc scope.Scope, rec *eventlog.Record) (done func(seq uint64, err error), err error)
}

// Config configures the front.
type Config struct {
	// EtcdPrefix is kube-apiserver's --etcd-prefix; Events are the keys
	// under <EtcdPrefix>/events/.
	EtcdPrefix string
	// Scope is the scope of a client the ClientScopes do not name; the
	// zero Scope refuses such clients.
	Scope scope.Scope
	// ClientScopes maps the common name of a verified client certificate
	// to the scope its kube-apiserver stores Events in.
	ClientScopes map[string]scope.Scope
	// MediaType is kube-apiserver's --storage-media-type.
	MediaType string
	// Window bounds the index reads of a Range to events last observed
	// this recently: it must exceed kube-apiserver's --event-ttl plus the
	// lease reuse (5 % of it, at most a minute), or live events go unseen.
	Window time.Duration
	// ProgressInterval is how often a watch that asked for progress
	// notifications gets one when it has nothing else to say (etcd: 10
	// minutes).
	ProgressInterval time.Duration
	// MaxRequestBytes refuses larger values, as etcd's
	// --max-request-bytes does (1.5 MiB).
	MaxRequestBytes int
	// ReapInterval is how often expired leases are looked for.
	ReapInterval time.Duration
	// TLS, when set, serves TLS; with ClientCAs set, client certificates
	// are required and verified.
	TLS *tls.Config
}

// DefaultConfig returns etcd's and kube-apiserver's defaults.
func DefaultConfig() Config {
	return Config{
		EtcdPrefix: "/registry", MediaType: MediaTypeProtobuf, Window: 2 * time.Hour,
		ProgressInterval: 10 * time.Minute, MaxRequestBytes: 1536 * 1024, ReapInterval: 500 * time.Millisecond,
	}
}

// Validate returns every problem with c.
func (c Config) Validate() []error {
	var errs []error
	if _, err := newCodec(c.MediaType); err != nil {
		errs = append(errs, err)
	}
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("window %s must be positive", c.Window))
	}
	if c.ProgressInterval <= 0 || c.ReapInterval <= 0 {
		errs = append(errs, fmt.Errorf("progress and reap intervals must be positive"))
	}
	if c.MaxRequestBytes <= 0 {
		errs = append(errs, fmt.Errorf("max request bytes %d must be positive", c.MaxRequestBytes))
	}
	if c.Scope != (scope.Scope{}) {
		if err := c.Scope.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("scope: %w", err))
		}
	}
	for cn, sc := range c.ClientScopes {
		if err := sc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("scope of client %q: %w", cn, err))
		}
	}
	return errs
}

// Deps are the parts the front serves from.
type Deps struct {
	Log       Log
	Index     Index
	Watermark Watermark
	State     *State
	// Admission may be nil: no tier limits.
	Admission Admission
	// DiskUsage reports the index's bytes for Status; may be nil.
	DiskUsage func(ctx context.Context) (uint64, error)
	Metrics   *Metrics
	Logger    *slog.Logger
}

// Server is the etcd front. It is safe for concurrent use.
type Server struct {
	pb.UnimplementedKVServer
	pb.UnimplementedWatchServer
	pb.UnimplementedLeaseServer
	pb.UnimplementedMaintenanceServer
	pb.UnimplementedClusterServer

	cfg   Config
	keys  keyspace
	codec *codec
	d     Deps
	log   *slog.Logger

	// covered caches whether the log holds every state of the window (see
	// logCovers), with when it was last asked.
	coverMu   sync.Mutex
	covered   bool
	coveredAt time.Time
}

// New returns a front over d.
func New(cfg Config, d Deps) (*Server, error) {
	if err := errors.Join(cfg.Validate()...); err != nil {
		return nil, err
	}
	c, _ := newCodec(cfg.MediaType)
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	return &Server{cfg: cfg, keys: newKeyspace(cfg.EtcdPrefix), codec: c, d: d, log: log}, nil
}

// grpcOverhead is what etcd adds to --max-request-bytes for the gRPC
// message limit: room for the request around the value.
const grpcOverhead = 512 * 1024

// Serve serves the etcd API on l until ctx ends, then stops the server and
// waits for its handlers (and so for its watches) and its lease reaper.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if err := s.ensureRevision(ctx); err != nil {
		_ = l.Close()
		return err
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.cfg.MaxRequestBytes + grpcOverhead),
		grpc.MaxSendMsgSize(1<<31 - 1),
		grpc.MaxConcurrentStreams(1 << 20),
		// kube-apiserver's client pings every 30 s without streams.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.d.Metrics.unary),
		grpc.ChainStreamInterceptor(s.d.Metrics.stream),
		grpc.WaitForHandlers(true),
	}
	if s.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.cfg.TLS)))
	}
	g := grpc.NewServer(opts...)
	pb.RegisterKVServer(g, s)
	pb.RegisterWatchServer(g, s)
	pb.RegisterLeaseServer(g, s)
	pb.RegisterMaintenanceServer(g, s)
	pb.RegisterClusterServer(g, s)
	stop := context.AfterFunc(ctx, g.Stop)
	defer stop()
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		s.Reap(ctx)
	}()
	err := g.Serve(l)
	if err != nil {
		g.Stop()
	}
	<-reaped
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// scopeOf returns the scope of the client that sent a request.
func (s *Server) scopeOf(ctx context.Context) (scope.Scope, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
			cn := ti.State.VerifiedChains[0][0].Subject.CommonName
			if sc, ok := s.cfg.ClientScopes[cn]; ok {
				return sc, nil
			}
			if s.cfg.Scope == (scope.Scope{}) {
				return scope.Scope{}, status.Errorf(codes.PermissionDenied,
					"etcdserver: permission denied: client certificate %q is not mapped to a scope (--etcd.client-scope)", cn)
			}
		}
	}
	if s.cfg.Scope == (scope.Scope{}) {
		return scope.Scope{}, status.Error(codes.PermissionDenied,
			"etcdserver: permission denied: no scope for this client; set --etcd.scope or map its client certificate with --etcd.client-scope")
	}
	return s.cfg.Scope, nil
}

// callTimeout bounds one request's calls to the log and the index: while
// NATS is unreachable its client waits for a reconnect, and kube-apiserver
// should get an error it retries, as from an etcd without a leader.
const callTimeout = 5 * time.Second

// unavailable maps a failure of the log or the index to etcd's answer when
// it cannot serve: kube-apiserver retries or returns 5xx, as with etcd down.
func unavailable(what string, err error) error {
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, "context canceled")
	}
	return status.Errorf(codes.Unavailable, "etcdserver: request timed out: %s: %v", what, err)
}

// header is a response header at revision rev.
func (s *Server) header(rev uint64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: clusterID, MemberId: memberID, Revision: int64(rev), RaftTerm: 1}
}

// The front's one member: kube-apiserver only shows the IDs.
const (
	clusterID = 0x6576656e74706970 // "eventpip"
	memberID  = 0x65
)

// version is what Status reports. kube-apiserver enables watch progress
// requests (consistent reads from its watch cache) from 3.4.31 and 3.5.13
// on; the front implements what 3.6 offers kube-apiserver.
const version = "3.6.0"

// GenesisName names the state ensureRevision writes into a fresh log (in
// kube-system, platform scope).
const GenesisName = "eventpipe-etcd-genesis"

// ensureRevision makes sure the log has held a state before the front
// answers. An etcd never answers revision 0 (its store starts at 1), and
// kube-apiserver refuses a list at 0 ("illegal resource version from
// storage: 0"); nor may the front answer 1 for an empty log, since the
// first write would then also be 1 and a watch from a list at 1 would miss
// it. So on a log that never held a state the front writes one: the
// deletion of an event that never existed, in the platform scope, which no
// list shows and the front's own scopes never read. The message id makes
// fronts that start together write it once.
func (s *Server) ensureRevision(ctx context.Context) error {
	head, err := s.head(ctx)
	if err != nil || head > 0 {
		return err
	}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: GenesisName}}
	rec := &eventlog.Record{Key: eventlog.Key{Scope: scope.Platform, Namespace: ev.Namespace, Name: ev.Name}, Op: eventlog.OpDelete, Event: ev}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := s.d.Log.Publish(ctx, rec, eventlog.PublishOptions{MsgID: "etcd-front/" + GenesisName}); err != nil {
		return fmt.Errorf("write the log's first state (an etcd never answers revision 0): %w", err)
	}
	s.log.Info("the log was empty: wrote its first state so that every revision the front answers is at least 1", "name", GenesisName)
	return nil
}

// head is the revision a read at revision 0 answers at: the log's newest
// sequence (or the watermark, should that be ahead), so that it reflects
// every acknowledged write.
func (s *Server) head(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, last, err := s.d.Log.Bounds(ctx)
	if err != nil {
		return 0, unavailable("read the log's bounds", err)
	}
	return max(last, s.d.Watermark.Load()), nil
}

// Status implements pb.MaintenanceServer.
func (s *Server) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	if _, err := s.scopeOf(ctx); err != nil {
		return nil, err
	}
	rev, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	var size uint64
	if s.d.DiskUsage != nil {
		if size, err = s.d.DiskUsage(ctx); err != nil {
			return nil, unavailable("read the index's size", err)
		}
	}
	return &pb.StatusResponse{Header: s.header(rev), Version: version, DbSize: int64(size), DbSizeInUse: int64(size),
		Leader: memberID, RaftIndex: rev, RaftTerm: 1, RaftAppliedIndex: rev, StorageVersion: version}, nil
}

// MemberList implements pb.ClusterServer: the front is one member.
func (s *Server) MemberList(ctx context.Context, _ *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if _, err := s.scopeOf(ctx); err != nil {
		return nil, err
	}
	rev, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.MemberListResponse{Header: s.header(rev), Members: []*pb.Member{{ID: memberID, Name: "eventpipe"}}}, nil
}

// Put implements pb.KVServer. kube-apiserver writes Events in
// transactions only; a plain put cannot say whether it creates or updates.
func (s *Server) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return nil, errUnsupported("Put: write with kube-apiserver's transactions (create: mod_revision == 0 → put; update: mod_revision == r → put)")
}

// DeleteRange implements pb.KVServer, refused as Put is.
func (s *Server) DeleteRange(context.Context, *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return nil, errUnsupported("DeleteRange: delete with kube-apiserver's transaction (mod_revision == r → delete)")
}

// errUnsupported refuses a request kube-apiserver does not make.
func errUnsupported(what string) error {
	return status.Errorf(codes.Unimplemented, "etcdserver: eventpipe's etcd front does not support %s", what)
}
