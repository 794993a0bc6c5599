// Package activity benchmarks the activity processor: policy evaluation
// alone (CPU), and the whole processor path from EVENTS to ACTIVITIES on an
// embedded JetStream server.
package activity

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/activity"
	"github.com/eventpipe/eventpipe/internal/audit"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// recorded loads the realistic events the golden tests use (every kind the
// built-in policies cover, plus others for the fallback).
func recorded(tb testing.TB) []corev1.Event {
	files, err := filepath.Glob("../../internal/activity/testdata/events/*.json")
	require.NoError(tb, err)
	require.NotEmpty(tb, files)
	var all []corev1.Event
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(tb, err)
		var evs []corev1.Event
		require.NoError(tb, json.Unmarshal(b, &evs))
		all = append(all, evs...)
	}
	return all
}

// BenchmarkEvaluate is the processor's CPU cost per event: choosing the
// policies and evaluating rules and templates, all built-in policies loaded.
func BenchmarkEvaluate(b *testing.B) {
	set, err := activity.BuiltinSet()
	require.NoError(b, err)
	evs := recorded(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o := set.Evaluate(&evs[i%len(evs)])
		if o.Summary == "" {
			b.Fatal("empty summary")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProcessor is the processor end to end: b.N event states are in
// EVENTS; the clock runs until each has its Activity state in ACTIVITIES
// (published, acknowledged by JetStream, progress recorded).
func BenchmarkProcessor(b *testing.B) {
	ns := eventtest.Stream(b)
	ctx := context.Background()
	cfg := activity.DefaultConfig()
	require.NoError(b, activity.Ensure(ctx, ns.JS, cfg.Stream))
	require.NoError(b, audit.Ensure(ctx, ns.JS, eventlog.DefaultConfig()))
	set, err := activity.BuiltinSet()
	require.NoError(b, err)
	engine := activity.NewEngine()
	for _, p := range set.Policies() {
		engine.Put(p)
	}
	evs := recorded(b)
	pub := eventlog.NewPublisher(ns.JS)
	sc := scope.Scope{Type: scope.TypeProject, Name: "bench"}
	for i := 0; i < b.N; i++ {
		ev := evs[i%len(evs)].DeepCopy()
		ev.Name = fmt.Sprintf("%s-%d", ev.Name, i)
		_, err := pub.Publish(ctx, &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}, Op: eventlog.OpCreate, Event: ev},
			eventlog.PublishOptions{MsgID: fmt.Sprint(i)})
		require.NoError(b, err)
	}
	st, err := ns.JS.Stream(ctx, activity.StreamName)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	proc := activity.NewProcessor(ns.JS, engine, cfg, activity.NewMetrics(nil), slog.New(slog.DiscardHandler))
	go func() { done <- proc.Run(rctx) }()
	for {
		info, err := st.Info(ctx)
		require.NoError(b, err)
		if info.State.Msgs >= uint64(b.N) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	require.NoError(b, <-done)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
