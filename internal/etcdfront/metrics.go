package etcdfront

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Metrics are the front's Prometheus metrics.
type Metrics struct {
	requests    *prometheus.CounterVec
	writes      *prometheus.CounterVec
	leases      *prometheus.CounterVec
	expired     prometheus.Counter
	refused     prometheus.Counter
	badValues   prometheus.Counter
	outside     prometheus.Counter
	watches     prometheus.Gauge
	watchEvents prometheus.Counter
}

// NewMetrics registers the front's metrics on reg (none when nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_etcd_requests_total",
			Help: "etcd API calls by method and gRPC status code."}, []string{"method", "code"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_etcd_writes_total",
			Help: "Event states written through the etcd front, by operation."}, []string{"op"}),
		leases: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventpipe_etcd_lease_operations_total",
			Help: "Lease grants, keep-alives, revokes and expiries."}, []string{"op"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_etcd_expired_events_total",
			Help: "Events ended because their lease ran out (kube-apiserver's --event-ttl)."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_etcd_refused_writes_total",
			Help: "Writes refused by the tiers' rate limits or quota."}),
		badValues: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_etcd_bad_values_total",
			Help: "Writes refused because the value is not a readable Event (encrypted, wrong kind, garbage)."}),
		outside: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_etcd_outside_reads_total",
			Help: "Reads of keys outside the Events key space (answered empty)."}),
		watches: prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventpipe_etcd_watches",
			Help: "Open etcd watches."}),
		watchEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventpipe_etcd_watch_events_total",
			Help: "Events sent on etcd watches."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.writes, m.leases, m.expired, m.refused, m.badValues, m.outside, m.watches, m.watchEvents)
	}
	return m
}

// method is the short name of a gRPC method: "Range" of
// "/etcdserverpb.KV/Range".
func method(full string) string { return full[strings.LastIndex(full, "/")+1:] }

func (m *Metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer recoverInto(&err, info.FullMethod)
	resp, err = h(ctx, req)
	m.requests.WithLabelValues(method(info.FullMethod), status.Code(err).String()).Inc()
	return resp, err
}

func (m *Metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer recoverInto(&err, info.FullMethod)
	err = h(srv, ss)
	m.requests.WithLabelValues(method(info.FullMethod), status.Code(err).String()).Inc()
	return err
}

// recoverInto turns a panic in a handler into an Internal error for its
// caller: one bad request must not end the front for every cluster.
func recoverInto(err *error, method string) {
	if p := recover(); p != nil {
		*err = status.Errorf(codes.Internal, "etcdserver: internal error in %s: %v", method, p)
	}
}
