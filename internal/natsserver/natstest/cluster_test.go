package natstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/testenv"
)

// TestClusterSurvivesLeaderKill is the harness's own proof: an R3 stream
// on three processes keeps every acknowledged message when its leader is
// killed with SIGKILL, elects another leader, takes writes again, and the
// killed node comes back on its directory and ports and catches up.
func TestClusterSurvivesLeaderKill(t *testing.T) {
	c := StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3,
		Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			// Retried under one message id across the election: stored
			// once. Each attempt has its own bound: one sent to the
			// leader as it died is never answered.
			for {
				actx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := c.JS.Publish(actx, "t.x", []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint(i)))
				cancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	publish(0, 100)
	old := c.StreamLeader("T")
	old.Kill()
	if old.Running() {
		t.Fatal("killed node still runs")
	}
	publish(100, 200)
	now := c.StreamLeader("T")
	if now == old {
		t.Fatalf("leader is still the killed node %s", old.Name)
	}
	old.Restart()
	// Nothing acknowledged was lost, and the restarted node catches up.
	s, err := c.JS.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 200 || info.State.LastSeq != 200 {
		t.Fatalf("stream holds %d messages up to %d, want 200 up to 200", info.State.Msgs, info.State.LastSeq)
	}
	testenv.WaitFor(t, old.Name+" current after restart", 30*time.Second, func() (bool, string) {
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			return false, fmt.Sprint("no cluster info: ", err)
		}
		return replicaCurrent(info.Cluster, old.Name), fmt.Sprintf("%+v", info.Cluster)
	})
}

func replicaCurrent(ci *jetstream.ClusterInfo, name string) bool {
	for _, p := range ci.Replicas {
		if p.Name == name {
			return p.Current && !p.Offline
		}
	}
	return ci.Leader == name
}
