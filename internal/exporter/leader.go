package exporter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// ErrLostLease is returned by RunElected when this replica lost its lease:
// the process should exit so that it never exports next to the new leader
// for longer than its last publishes take.
var ErrLostLease = errors.New("lost the leader lease")

// RunElected runs e only while this replica holds the coordination Lease
// in the source cluster (Config.LeaderElect); otherwise it runs e directly.
// A standby waits for the lease; the new leader resumes from the stored
// resume point, and states the old leader published just before it stopped
// are deduplicated by message id.
func (e *Exporter) RunElected(ctx context.Context) error {
	if !e.cfg.LeaderElect {
		return e.Run(ctx)
	}
	id := e.cfg.Identity
	if id == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		id = host + "_" + hex.EncodeToString(b)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.cfg.LeaseNamespace, Name: e.cfg.leaseName()},
		Client:     e.cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	outer := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// OnStartedLeading runs in a goroutine of its own that le.Run does not
	// wait for; done tells when the export has really stopped.
	var runErr error
	var started atomic.Bool
	done := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: e.cfg.LeaseDuration,
		RenewDeadline: e.cfg.RenewDeadline,
		RetryPeriod:   e.cfg.RetryPeriod,
		// Releasing on a clean stop lets the standby take over at once
		// instead of after LeaseDuration.
		ReleaseOnCancel: true,
		Name:            e.cfg.leaseName(),
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				defer close(done)
				started.Store(true)
				e.logr.Info("acquired the lease; exporting", "lease", e.cfg.LeaseNamespace+"/"+e.cfg.leaseName(), "identity", id)
				runErr = e.Run(ctx)
				// Run only ends early on an error: give the lease up so
				// that another replica can try.
				cancel()
			},
			OnStoppedLeading: func() {
				e.logr.Info("not leading any more", "identity", id)
			},
			OnNewLeader: func(leader string) {
				if leader != id {
					e.logr.Info("standing by", "leader", leader, "identity", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(ctx)
	if !started.Load() {
		return nil // stopped while standing by
	}
	// Leadership ended: stop exporting before saying so.
	cancel()
	<-done
	switch {
	case runErr != nil:
		return runErr
	case outer.Err() != nil:
		return nil
	}
	return ErrLostLease
}
