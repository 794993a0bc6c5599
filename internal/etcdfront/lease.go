package etcdfront

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// leaseAlive reports whether a lease exists and has not run out.
func (s *Server) leaseAlive(sc scope.Scope, id int64) bool {
	_, ok := s.d.State.leaseOf(sc, id, time.Now())
	return ok
}

// LeaseGrant implements pb.LeaseServer. kube-apiserver grants one lease of
// --event-ttl plus a little and attaches the Events of the next few
// seconds to it (k8s.io/apiserver/pkg/storage/etcd3/lease_manager.go).
func (s *Server) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if r.TTL > maxLeaseTTL {
		return nil, rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	if r.ID < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "etcdserver: lease ID %d is negative", r.ID)
	}
	id, ttl, err := s.d.State.grant(ctx, sc, r.ID, r.TTL, time.Now())
	if errors.Is(err, errLeaseExists) {
		return nil, rpctypes.ErrGRPCLeaseExist
	}
	if err != nil {
		return nil, unavailable("store the lease", err)
	}
	rev, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	s.d.Metrics.leases.WithLabelValues("grant").Inc()
	return &pb.LeaseGrantResponse{Header: s.header(rev), ID: id, TTL: ttl}, nil
}

// LeaseRevoke implements pb.LeaseServer: the lease's events end now, before
// the answer, as etcd deletes a revoked lease's keys.
func (s *Server) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	l, ok := s.d.State.leaseOf(sc, r.ID, time.Now())
	if !ok {
		return nil, rpctypes.ErrGRPCLeaseNotFound
	}
	now := time.Now()
	if err := s.d.State.setExpiry(ctx, sc, r.ID, l, now); err != nil {
		return nil, unavailable("store the lease", err)
	}
	l.Expires = now
	if err := s.reapLease(ctx, leaseKey{sc, r.ID}, l); err != nil {
		return nil, unavailable("end the lease's events", err)
	}
	rev, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	s.d.Metrics.leases.WithLabelValues("revoke").Inc()
	return &pb.LeaseRevokeResponse{Header: s.header(rev)}, nil
}

// LeaseKeepAlive implements pb.LeaseServer: each request renews a lease
// for its TTL; an unknown or expired lease answers TTL 0, as etcd does.
func (s *Server) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	sc, err := s.scopeOf(stream.Context())
	if err != nil {
		return err
	}
	for {
		r, err := stream.Recv()
		if err != nil {
			return nil // the client went away
		}
		ctx := stream.Context()
		rev, err := s.head(ctx)
		if err != nil {
			return err
		}
		resp := &pb.LeaseKeepAliveResponse{Header: s.header(rev), ID: r.ID}
		now := time.Now()
		if l, ok := s.d.State.leaseOf(sc, r.ID, now); ok {
			if err := s.d.State.setExpiry(ctx, sc, r.ID, l, now.Add(time.Duration(l.TTL)*time.Second)); err != nil {
				return unavailable("store the lease", err)
			}
			resp.TTL = l.TTL
			s.d.Metrics.leases.WithLabelValues("keepalive").Inc()
		}
		if err := stream.Send(resp); err != nil {
			return nil
		}
	}
}

// LeaseTimeToLive implements pb.LeaseServer; an unknown lease has TTL -1.
func (s *Server) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	rev, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	l, ok := s.d.State.leaseOf(sc, r.ID, now)
	if !ok {
		return &pb.LeaseTimeToLiveResponse{Header: s.header(rev), ID: r.ID, TTL: -1}, nil
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: s.header(rev), ID: r.ID, TTL: int64(l.Expires.Sub(now).Seconds()), GrantedTTL: l.TTL}
	if r.Keys {
		recs, err := s.leaseKeys(ctx, leaseKey{sc, r.ID}, l)
		if err != nil {
			return nil, unavailable("read the lease's keys", err)
		}
		for _, rec := range recs {
			resp.Keys = append(resp.Keys, s.keys.keyOf(rec))
		}
	}
	return resp, nil
}

// LeaseLeases implements pb.LeaseServer: the scope's live leases.
func (s *Server) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	rev, err := s.head(ctx)
	if err != nil {
		return nil, err
	}
	resp := &pb.LeaseLeasesResponse{Header: s.header(rev)}
	for _, id := range s.d.State.leasesOf(sc, time.Now()) {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: id})
	}
	return resp, nil
}

// Reap ends the events of expired leases until ctx ends: every
// ReapInterval, each expired lease's live events get an OpExpire state and
// the lease is forgotten. Fronts sharing a log may all reap: a state is
// ended with the expected last sequence of its subject, so each is ended
// once.
func (s *Server) Reap(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for k, l := range s.d.State.expired(time.Now()) {
			if err := s.reapLease(ctx, k, l); err != nil && ctx.Err() == nil {
				s.log.Warn("etcd front: ending an expired lease's events failed; retrying", "scope", k.sc.String(), "lease", k.id, "err", err)
			}
		}
	}
}

// leaseKeys returns the live events attached to a lease: the index's, as of
// the watermark and within the window before the lease was granted, and
// the log's after it.
func (s *Server) leaseKeys(ctx context.Context, k leaseKey, l lease) ([]*eventlog.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, last, err := s.d.Log.Bounds(ctx)
	if err != nil {
		return nil, err
	}
	base := min(s.d.Watermark.Load(), last)
	byKey := map[eventlog.Key]*eventlog.Record{}
	if base > 0 {
		recs, err := s.d.Index.RangeKeys(ctx, chstore.KeyRange{Lease: k.id,
			LatestFilter: chstore.LatestFilter{Scope: &k.sc, Since: l.Granted.Add(-s.cfg.Window), AtSeq: base}})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			byKey[r.Key] = r
		}
	}
	if base < last {
		recs, err := s.d.Log.Range(ctx, eventlog.FilterSubject(&k.sc, nil), base, last)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.Lease == k.id && !r.Op.Gone() {
				byKey[r.Key] = r
			} else {
				delete(byKey, r.Key)
			}
		}
	}
	out := make([]*eventlog.Record, 0, len(byKey))
	for _, r := range byKey {
		out = append(out, r)
	}
	return out, nil
}

// reapLease ends the live events of an expired lease, then forgets it. An
// event written again meanwhile (a newer state) is left alone: its newest
// state holds its own lease.
func (s *Server) reapLease(ctx context.Context, k leaseKey, l lease) error {
	recs, err := s.leaseKeys(ctx, k, l)
	if err != nil {
		return err
	}
	for _, r := range recs {
		cur, expect, err := s.current(ctx, k.sc, r.Key.Namespace, r.Key.Name)
		if err != nil {
			return err
		}
		if cur == nil || cur.Lease != k.id {
			continue
		}
		rec := &eventlog.Record{Key: cur.Key, Op: eventlog.OpExpire, Event: stateOf(cur.Event), Lease: k.id}
		if _, err := s.publish(ctx, k.sc, rec, expect); errors.Is(err, eventlog.ErrConflict) {
			return err // written meanwhile: look again next time
		} else if err != nil {
			return err
		}
		s.d.Metrics.expired.Inc()
	}
	s.d.Metrics.leases.WithLabelValues("expire").Inc()
	return s.d.State.forget(ctx, k.sc, k.id)
}
