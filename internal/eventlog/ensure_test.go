package eventlog

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
)

// TestEnsureUpdatesOnlyChanges: ensuring what exists sends no update (the
// stream's last update time stays), a changed setting is applied.
func TestEnsureUpdatesOnlyChanges(t *testing.T) {
	ns := natstest.ForTest(t)
	ctx := context.Background()
	cfg := jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, MaxBytes: 1 << 20, Duplicates: time.Minute}
	s, err := EnsureStream(ctx, ns.JS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	created := s.CachedInfo().Created
	again, err := EnsureStream(ctx, ns.JS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if streamDiffers(again.CachedInfo().Config, cfg) || !again.CachedInfo().Created.Equal(created) {
		t.Fatal("an unchanged stream was changed")
	}
	cfg.MaxBytes = 2 << 20
	if !streamDiffers(again.CachedInfo().Config, cfg) {
		t.Fatal("a changed MaxBytes is not seen as a change")
	}
	updated, err := EnsureStream(ctx, ns.JS, cfg)
	if err != nil || updated.CachedInfo().Config.MaxBytes != 2<<20 {
		t.Fatalf("update: %v", err)
	}

	kcfg := jetstream.KeyValueConfig{Bucket: "B", History: 2, TTL: time.Minute}
	if _, err := EnsureKeyValue(ctx, ns.JS, kcfg); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureKeyValue(ctx, ns.JS, kcfg); err != nil {
		t.Fatal(err)
	}
	kcfg.History = 4
	kv, err := EnsureKeyValue(ctx, ns.JS, kcfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil || st.History() != 4 {
		t.Fatalf("history after a change: %v %v", st, err)
	}
}
