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
// changed setting is applied. Updates are observed by the server's
// advisories, which it publishes in order.
func TestEnsureUpdatesOnlyChanges(t *testing.T) {
	ns := natstest.ForTest(t)
	ctx := context.Background()
	updates, err := ns.NC.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, MaxBytes: 1 << 20, Duplicates: time.Minute}
	kcfg := jetstream.KeyValueConfig{Bucket: "B", History: 2, TTL: time.Minute}
	for range 2 { // created, then ensured unchanged
		if _, err := EnsureStream(ctx, ns.JS, cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := EnsureKeyValue(ctx, ns.JS, kcfg); err != nil {
			t.Fatal(err)
		}
	}
	// Changed: the bucket first, then the stream. Had the unchanged ensures
	// updated anything, their advisories (stream first) would come first.
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
			t.Fatalf("no update advisory for %s: %v", want, err)
		}
		if got := m.Subject[strings.LastIndex(m.Subject, ".")+1:]; got != want {
			t.Fatalf("update advisory for %s, want %s: an unchanged ensure sent an update", got, want)
		}
	}
	if st, err := kv.Status(ctx); err != nil || st.History() != 4 {
		t.Fatalf("history after the change: %v %v", st, err)
	}
	if s.CachedInfo().Config.MaxBytes != 2<<20 {
		t.Fatalf("max bytes after the change: %d", s.CachedInfo().Config.MaxBytes)
	}
}
