package eventlog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
)

// TestEnsureUpdatesOnlyChanges: ensuring what exists sends no update, a
// changed setting is applied. Updates are observed as the update requests
// themselves, on the connection that sends them, so they arrive in the
// order they were sent (the server's update advisories come from a
// goroutine per stream, in no order across streams).
func TestEnsureUpdatesOnlyChanges(t *testing.T) {
	ns := natstest.ForTest(t)
	ctx := context.Background()
	cfg := jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, MaxBytes: 1 << 20, Duplicates: time.Minute}
	kcfg := jetstream.KeyValueConfig{Bucket: "B", History: 2, TTL: time.Minute}
	ensure := func() {
		t.Helper()
		if _, err := EnsureStream(ctx, ns.JS, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := EnsureKeyValue(ctx, ns.JS, kcfg); err != nil {
			t.Fatal(err)
		}
	}
	ensure() // created (creating a bucket tries an update first)
	updates, err := ns.NC.SubscribeSync("$JS.API.STREAM.UPDATE.>")
	if err != nil {
		t.Fatal(err)
	}
	ensure() // unchanged: no update
	// Changed: the bucket first, then the stream. Had the unchanged ensures
	// updated anything, their requests (stream first) would come first.
	kcfg.History = 4
	kv, err := EnsureKeyValue(ctx, ns.JS, kcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxBytes = 2 << 20
	s, err := EnsureStream(ctx, ns.JS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"KV_B", "T"} {
		m, err := updates.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no update request for %s: %v", want, err)
		}
		if got := m.Subject[strings.LastIndex(m.Subject, ".")+1:]; got != want {
			t.Fatalf("update request for %s, want %s: an unchanged ensure sent an update", got, want)
		}
	}
	if st, err := kv.Status(ctx); err != nil || st.History() != 4 {
		t.Fatalf("history after the change: %v %v", st, err)
	}
	if s.CachedInfo().Config.MaxBytes != 2<<20 {
		t.Fatalf("max bytes after the change: %d", s.CachedInfo().Config.MaxBytes)
	}
}

// TestReplicasOnASingleServer: three replicas on a server that is not part
// of a cluster is refused with an error that names the flag and the way
// out, and nothing is created.
func TestReplicasOnASingleServer(t *testing.T) {
	ns := natstest.ForTest(t)
	ctx := context.Background()
	c := DefaultConfig()
	c.Replicas = 3
	err := Ensure(ctx, ns.JS, c)
	if err == nil {
		t.Fatal("R3 on a single server was accepted")
	}
	for _, want := range []string{"--stream.replicas 3", "single server", "--stream.replicas 1", "cluster of at least 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := ns.JS.Stream(ctx, StreamName); err == nil {
		t.Error("the stream was created anyway")
	}
}
