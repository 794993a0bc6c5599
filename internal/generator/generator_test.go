package generator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

var (
	alpha = scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta  = scope.Scope{Type: scope.TypeProject, Name: "beta"}
	acme  = scope.Scope{Type: scope.TypeOrganization, Name: "acme"}
	jane  = scope.Scope{Type: scope.TypeUser, Name: "jane@example.com"}
)

// t0 is a fixed instant for clocks that must not move.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

func fixedClock() func() time.Time { return func() time.Time { return t0 } }

// steppingClock advances by d on every reading, like a live clock at a
// steady rate.
func steppingClock(d time.Duration) func() time.Time {
	now := t0
	return func() time.Time {
		now = now.Add(d)
		return now
	}
}

type emitted struct {
	op eventlog.Op
	sc scope.Scope
	ev *corev1.Event
}

func generate(t *testing.T, cfg Config, n int) []emitted {
	t.Helper()
	g, err := New(cfg)
	require.NoError(t, err)
	out := make([]emitted, 0, n)
	for i := 0; i < n; i++ {
		op, sc, ev := g.Next()
		out = append(out, emitted{op, sc, ev})
	}
	return out
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "minimal", cfg: Config{Tenants: []scope.Scope{alpha}}},
		{name: "platform listed", cfg: Config{Tenants: []scope.Scope{scope.Platform, alpha}, Namespaces: 5, Rate: 1000}},
		{name: "many namespaces", cfg: Config{Tenants: []scope.Scope{alpha}, Namespaces: maxNamespaces}},
		{name: "no tenants", cfg: Config{}, wantErr: []string{"tenants: none given"}},
		{name: "bad scope", cfg: Config{Tenants: []scope.Scope{{Type: "project", Name: "x"}}}, wantErr: []string{"tenants[0]:", `unknown scope type "project"`}},
		{name: "scope without name", cfg: Config{Tenants: []scope.Scope{alpha, {Type: scope.TypeUser}}}, wantErr: []string{"tenants[1]:", "needs a name"}},
		{name: "duplicate", cfg: Config{Tenants: []scope.Scope{alpha, beta, alpha}}, wantErr: []string{"tenants[2]: Project/alpha is already tenants[0]"}},
		{name: "negative namespaces", cfg: Config{Tenants: []scope.Scope{alpha}, Namespaces: -1}, wantErr: []string{"namespaces: -1 is negative"}},
		{name: "too many namespaces", cfg: Config{Tenants: []scope.Scope{alpha}, Namespaces: maxNamespaces + 1}, wantErr: []string{"namespaces: 65 is more than 64"}},
		{name: "negative rate", cfg: Config{Tenants: []scope.Scope{alpha}, Rate: -1}, wantErr: []string{"rate: -1"}},
		{name: "NaN rate", cfg: Config{Tenants: []scope.Scope{alpha}, Rate: math.NaN()}, wantErr: []string{"rate: NaN"}},
		{name: "infinite rate", cfg: Config{Tenants: []scope.Scope{alpha}, Rate: math.Inf(1)}, wantErr: []string{"rate: +Inf"}},
		{
			name:    "all problems at once",
			cfg:     Config{Tenants: []scope.Scope{{Type: "Team", Name: "x"}}, Namespaces: -2, Rate: -3},
			wantErr: []string{"tenants[0]:", "namespaces: -2", "rate: -3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.cfg)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				require.NotNil(t, g)
				return
			}
			require.Error(t, err)
			require.Nil(t, g)
			for _, want := range tt.wantErr {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func() Config
		other func() Config // a config that must give different output
	}{
		{
			name:  "fixed clock",
			cfg:   func() Config { return Config{Tenants: []scope.Scope{alpha, beta}, Seed: 42, Now: fixedClock()} },
			other: func() Config { return Config{Tenants: []scope.Scope{alpha, beta}, Seed: 43, Now: fixedClock()} },
		},
		{
			name: "stepping clock",
			cfg: func() Config {
				return Config{Tenants: []scope.Scope{acme}, Namespaces: 5, Seed: -7, Now: steppingClock(50 * time.Millisecond)}
			},
			other: func() Config {
				return Config{Tenants: []scope.Scope{acme}, Namespaces: 5, Seed: 7, Now: steppingClock(50 * time.Millisecond)}
			},
		},
	}
	encode := func(t *testing.T, states []emitted) []string {
		out := make([]string, len(states))
		for i, s := range states {
			b, err := json.Marshal(s.ev)
			require.NoError(t, err)
			out[i] = fmt.Sprintf("%s %s %s", s.op, s.sc, b)
		}
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := encode(t, generate(t, tt.cfg(), 3000))
			b := encode(t, generate(t, tt.cfg(), 3000))
			require.Equal(t, a, b)
			c := encode(t, generate(t, tt.other(), 3000))
			require.NotEqual(t, a[:100], c[:100])
		})
	}
}

var (
	nameSuffix = regexp.MustCompile(`^\.[0-9a-f]{16}$`)
	uuidRE     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	fieldPath  = regexp.MustCompile(`^spec\.(init)?[cC]ontainers\{[a-z0-9-]+\}$`)
)

// occurrences is how many times an event says it happened.
func occurrences(ev *corev1.Event) int32 {
	if ev.Series != nil {
		return ev.Series.Count
	}
	if !ev.EventTime.IsZero() {
		return 1
	}
	return ev.Count
}

func isModern(ev *corev1.Event) bool { return !ev.EventTime.IsZero() }

// checkShape checks one state against what a real cluster would store.
func checkShape(t *testing.T, i int, s emitted) {
	ev := s.ev
	io := ev.InvolvedObject
	ctx := fmt.Sprintf("state %d (%s %s %s/%s %s)", i, s.op, s.sc, ev.Namespace, ev.Name, ev.Reason)

	require.True(t, strings.HasPrefix(ev.Name, io.Name), ctx)
	require.Regexp(t, nameSuffix, ev.Name[len(io.Name):], ctx)
	if io.Namespace == "" {
		require.Equal(t, "Node", io.Kind, ctx)
		require.Equal(t, "default", ev.Namespace, ctx)
	} else {
		require.Equal(t, io.Namespace, ev.Namespace, ctx)
		require.NotEmpty(t, io.APIVersion, ctx)
		require.NotEmpty(t, io.ResourceVersion, ctx)
		require.Regexp(t, uuidRE, string(io.UID), ctx)
	}
	require.NotEmpty(t, io.Kind, ctx)
	require.NotEmpty(t, io.UID, ctx)
	require.Regexp(t, uuidRE, string(ev.UID), ctx)
	require.False(t, ev.CreationTimestamp.IsZero(), ctx)
	require.Contains(t, []string{corev1.EventTypeNormal, corev1.EventTypeWarning}, ev.Type, ctx)
	require.NotEmpty(t, ev.Reason, ctx)
	require.NotEmpty(t, ev.ReportingController, ctx)
	require.Len(t, ev.ManagedFields, 1, ctx)
	if io.FieldPath != "" {
		require.Regexp(t, fieldPath, io.FieldPath, ctx)
		require.Equal(t, "Pod", io.Kind, ctx)
	}
	if ev.ReportingController == "kubelet" {
		require.NotEmpty(t, ev.Source.Host, ctx)
		require.Equal(t, ev.Source.Host, ev.ReportingInstance, ctx)
	}
	if isModern(ev) {
		require.NotEmpty(t, ev.Action, ctx)
		require.NotEmpty(t, ev.ReportingInstance, ctx)
		require.True(t, ev.FirstTimestamp.IsZero(), ctx)
		require.True(t, ev.LastTimestamp.IsZero(), ctx)
		require.Zero(t, ev.Count, ctx)
		require.Empty(t, ev.Source, ctx)
		require.Equal(t, "events.k8s.io/v1", ev.ManagedFields[0].APIVersion, ctx)
		require.Equal(t, ev.EventTime.Time, ev.EventTime.Truncate(time.Microsecond), ctx)
		if s.op == eventlog.OpCreate {
			require.Nil(t, ev.Series, ctx)
		}
	} else {
		require.Empty(t, ev.Action, ctx)
		require.Nil(t, ev.Series, ctx)
		require.Equal(t, ev.ReportingController, ev.Source.Component, ctx)
		require.GreaterOrEqual(t, ev.Count, int32(1), ctx)
		require.False(t, ev.FirstTimestamp.IsZero(), ctx)
		require.False(t, ev.LastTimestamp.Before(&ev.FirstTimestamp), ctx)
		require.Zero(t, ev.FirstTimestamp.Nanosecond(), ctx)
		require.Zero(t, ev.LastTimestamp.Nanosecond(), ctx)
		require.Equal(t, "v1", ev.ManagedFields[0].APIVersion, ctx)
	}
}

func TestStates(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		n       int
		tenants []scope.Scope
	}{
		{name: "fixed clock", cfg: Config{Tenants: []scope.Scope{alpha, beta}, Seed: 1, Now: fixedClock()}, n: 10000},
		{name: "stepping clock", cfg: Config{Tenants: []scope.Scope{alpha, beta, acme, jane}, Namespaces: 6, Seed: 99, Now: steppingClock(37 * time.Millisecond)}, n: 20000},
		{name: "one tenant one namespace", cfg: Config{Tenants: []scope.Scope{acme}, Namespaces: 1, Seed: 5, Now: steppingClock(time.Second)}, n: 8000},
		{name: "platform listed", cfg: Config{Tenants: []scope.Scope{scope.Platform, alpha}, Seed: 3, Now: steppingClock(10 * time.Millisecond)}, n: 10000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.cfg)
			require.NoError(t, err)

			type key struct {
				sc       scope.Scope
				ns, name string
			}
			type known struct {
				ev      *corev1.Event
				deleted bool
			}
			events := map[key]*known{}
			ops := map[eventlog.Op]int{}
			tenants := map[scope.Scope]int{}
			types := map[string]int{}
			var nodeEvents, modern, repeatedBeyond2 int
			// Hosts and object uids belong to one tenant each.
			owners := map[string]scope.Scope{}
			owned := func(what string, sc scope.Scope) {
				if strings.HasSuffix(what, " ") {
					return
				}
				if o, ok := owners[what]; ok {
					require.Equal(t, o, sc, "%s is shared by two tenants", what)
				}
				owners[what] = sc
			}
			for i := 0; i < tt.n; i++ {
				op, sc, ev := g.Next()
				s := emitted{op, sc, ev}
				checkShape(t, i, s)
				owned("host "+ev.Source.Host, sc)
				owned("uid "+string(ev.InvolvedObject.UID), sc)
				ops[op]++
				tenants[sc]++
				types[ev.Type]++
				if ev.InvolvedObject.Kind == "Node" && ev.InvolvedObject.Namespace == "" {
					nodeEvents++
				}
				if isModern(ev) {
					modern++
				}

				k := key{sc, ev.Namespace, ev.Name}
				prev := events[k]
				ctx := fmt.Sprintf("state %d (%s %s %s/%s %s)", i, op, sc, ev.Namespace, ev.Name, ev.Reason)
				switch op {
				case eventlog.OpCreate:
					require.Nil(t, prev, "create of an existing event: "+ctx)
					require.Equal(t, int32(1), occurrences(ev), ctx)
				case eventlog.OpUpdate:
					require.NotNil(t, prev, "update of an unknown event: "+ctx)
					require.False(t, prev.deleted, "update of a deleted event: "+ctx)
					require.Equal(t, prev.ev.UID, ev.UID, ctx)
					require.Equal(t, prev.ev.InvolvedObject, ev.InvolvedObject, ctx)
					require.Equal(t, prev.ev.Message, ev.Message, ctx)
					require.Greater(t, occurrences(ev), occurrences(prev.ev), ctx)
					if isModern(ev) {
						require.NotNil(t, ev.Series, ctx)
						require.False(t, ev.Series.LastObservedTime.Before(&prev.ev.EventTime), ctx)
					} else {
						require.Equal(t, prev.ev.FirstTimestamp, ev.FirstTimestamp, ctx)
						require.False(t, ev.LastTimestamp.Before(&prev.ev.LastTimestamp), ctx)
					}
					if occurrences(ev) > 2 {
						repeatedBeyond2++
					}
				case eventlog.OpDelete:
					require.NotNil(t, prev, "delete of an unknown event: "+ctx)
					require.False(t, prev.deleted, "delete of a deleted event: "+ctx)
					// A delete carries the final state unchanged.
					require.Equal(t, prev.ev, ev, ctx)
				default:
					t.Fatalf("unknown op %v: %s", op, ctx)
				}
				events[k] = &known{ev: ev.DeepCopy(), deleted: op == eventlog.OpDelete}
				// The caller owns what Next returns: scribbling on it must not
				// leak into later states (checked by the Message equality on
				// updates above).
				ev.Message = "scribbled"
				ev.Count = -1
			}

			for _, sc := range tt.cfg.Tenants {
				require.Positive(t, tenants[sc], "tenant %s produced nothing", sc)
			}
			require.Len(t, tenants, len(tt.cfg.Tenants), "states for unconfigured tenants: %v", tenants)
			require.Positive(t, types[corev1.EventTypeNormal])
			require.Positive(t, types[corev1.EventTypeWarning])
			require.Positive(t, ops[eventlog.OpCreate])
			require.Positive(t, ops[eventlog.OpUpdate])
			require.Positive(t, ops[eventlog.OpDelete])
			require.Positive(t, nodeEvents, "no node events")
			require.Positive(t, modern, "no events.k8s.io-style events")
			require.Positive(t, repeatedBeyond2, "no event repeated more than twice")
			t.Logf("ops %v, types %v, node events %d, events.k8s.io style %d", ops, types, nodeEvents, modern)
		})
	}
}

// TestRealEvents checks that the stories real clusters tell are all there.
func TestRealEvents(t *testing.T) {
	states := generate(t, Config{Tenants: []scope.Scope{alpha, beta, acme}, Seed: 11, Now: steppingClock(50 * time.Millisecond)}, 30000)
	seen := map[string]bool{}
	for _, s := range states {
		seen[s.ev.InvolvedObject.Kind+"/"+s.ev.Reason] = true
	}
	for _, want := range []string{
		"Deployment/ScalingReplicaSet", "ReplicaSet/SuccessfulCreate", "ReplicaSet/SuccessfulDelete",
		"Pod/Scheduled", "Pod/Pulling", "Pod/Pulled", "Pod/Created", "Pod/Started", "Pod/Killing",
		"Pod/Unhealthy", "Pod/BackOff", "Pod/FailedMount", "Pod/FailedScheduling",
		"StatefulSet/SuccessfulCreate", "DaemonSet/SuccessfulCreate", "Job/SuccessfulCreate", "Job/Completed",
		"CronJob/SuccessfulCreate", "PersistentVolumeClaim/ProvisioningSucceeded", "PersistentVolumeClaim/WaitForFirstConsumer",
		"HorizontalPodAutoscaler/SuccessfulRescale",
		"Node/NodeNotReady", "Node/NodeReady", "Node/Starting", "Node/RegisteredNode",
	} {
		require.True(t, seen[want], "no %s event", want)
	}
}

func TestEventSize(t *testing.T) {
	states := generate(t, Config{Tenants: []scope.Scope{alpha, beta, acme}, Seed: 2024, Now: steppingClock(50 * time.Millisecond)}, 10000)
	in := 0
	for _, s := range states {
		b, err := json.Marshal(s.ev)
		require.NoError(t, err)
		if len(b) >= 700 && len(b) <= 1500 {
			in++
		}
	}
	require.GreaterOrEqual(t, in, 9000, "only %d of 10000 events are 700-1500 bytes of JSON", in)
}

// TestBounded runs the simulation for long enough to reach its steady state
// and checks that nothing grows past its bound.
func TestBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("long run")
	}
	g, err := New(Config{Tenants: []scope.Scope{alpha, beta}, Seed: 8, Now: steppingClock(time.Millisecond)})
	require.NoError(t, err)
	for i := 0; i < 150000; i++ {
		g.Next()
	}
	require.LessOrEqual(t, g.live.n, maxLive)
	require.LessOrEqual(t, len(g.repeaters), maxRepeaters)
	require.LessOrEqual(t, len(g.chains), maxChains*4)
	for _, tn := range g.tenants {
		for _, w := range g.workloads(tn, "") {
			require.LessOrEqual(t, len(w.pods), max(w.app.maxRep+1, len(tn.nodes)), "%s/%s", w.obj.namespace, w.obj.name)
			require.LessOrEqual(t, len(w.jobs), jobHistory+1)
		}
		require.LessOrEqual(t, len(tn.imageSizes), 257)
	}
}

type recordingSink struct {
	mu     sync.Mutex
	states []emitted
	failAt int // fail the write with this 1-based index; 0 never
}

var errSinkFull = errors.New("sink full")

func (s *recordingSink) Write(_ context.Context, op eventlog.Op, sc scope.Scope, ev *corev1.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAt > 0 && len(s.states)+1 == s.failAt {
		return errSinkFull
	}
	s.states = append(s.states, emitted{op, sc, ev})
	return nil
}

func (s *recordingSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.states)
}

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		rate    float64
		failAt  int
		wantErr error
	}{
		{name: "stops on cancel", rate: 200},
		{name: "default rate", rate: 0},
		{name: "fast", rate: 100000},
		{name: "sink error", rate: 1000, failAt: 5, wantErr: errSinkFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(Config{Tenants: []scope.Scope{alpha}, Rate: tt.rate, Seed: 1})
			require.NoError(t, err)
			sink := &recordingSink{failAt: tt.failAt}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- g.Run(ctx, sink) }()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not stop after its context was done")
			}
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, tt.failAt-1, sink.len())
				return
			}
			require.NoError(t, err)
			n := sink.len()
			require.Positive(t, n)
			// Pacing, loosely: far fewer states than an unpaced loop makes.
			if tt.rate > 0 && tt.rate < 1000 {
				require.Less(t, n, 20*int(tt.rate))
			}
		})
	}
}

// stateTime is when a state happened, as the event says.
func stateTime(ev *corev1.Event) time.Time {
	if isModern(ev) {
		if ev.Series != nil {
			return ev.Series.LastObservedTime.Time
		}
		return ev.EventTime.Time
	}
	return ev.LastTimestamp.Time
}

func TestBackfill(t *testing.T) {
	from := time.Date(2025, 3, 13, 8, 15, 30, 250_000_000, time.UTC)
	tests := []struct {
		name     string
		from, to time.Time
		n        int
		wantErr  string
	}{
		{name: "a day", from: from, to: from.Add(24 * time.Hour), n: 5000},
		{name: "an hour, dense", from: from, to: from.Add(time.Hour), n: 20000},
		{name: "aligned window", from: from.Truncate(time.Minute), to: from.Truncate(time.Minute).Add(10 * time.Minute), n: 1000},
		{name: "none", from: from, to: from.Add(time.Hour), n: 0},
		{name: "negative n", from: from, to: from.Add(time.Hour), n: -1, wantErr: "n is -1"},
		{name: "empty window", from: from, to: from, n: 10, wantErr: "is empty"},
		{name: "reversed window", from: from, to: from.Add(-time.Hour), n: 10, wantErr: "is empty"},
		{name: "too dense", from: from, to: from.Add(2 * time.Second), n: 10_000_000, wantErr: "do not fit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(Config{Tenants: []scope.Scope{alpha, beta}, Seed: 77})
			require.NoError(t, err)
			sink := &recordingSink{}
			err = g.Backfill(context.Background(), sink, tt.from, tt.to, tt.n)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, sink.states, tt.n)
			var last time.Time
			for i, s := range sink.states {
				checkShape(t, i, s)
				at := stateTime(s.ev)
				ctx := fmt.Sprintf("state %d (%s %s/%s at %s)", i, s.op, s.ev.Namespace, s.ev.Name, at.Format(time.RFC3339Nano))
				require.False(t, at.Before(tt.from), ctx)
				require.True(t, at.Before(tt.to), ctx)
				require.False(t, s.ev.CreationTimestamp.Time.Before(tt.from), ctx)
				if s.op == eventlog.OpDelete {
					continue // a delete carries the time of the event's last occurrence
				}
				// Legacy events have whole seconds, so compare at that grain.
				at = at.Truncate(time.Second)
				require.False(t, at.Before(last), ctx)
				last = at
			}
		})
	}
}

func TestBackfillThenRun(t *testing.T) {
	now := time.Now()
	g, err := New(Config{Tenants: []scope.Scope{alpha}, Seed: 5, Rate: 500})
	require.NoError(t, err)
	sink := &recordingSink{}
	require.NoError(t, g.Backfill(context.Background(), sink, now.Add(-time.Hour), now, 2000))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.NoError(t, g.Run(ctx, sink))
	require.Greater(t, sink.len(), 2000)
	// Live states continue the history: updates and deletes still refer to
	// events created before, and names stay unique.
	created := map[string]bool{}
	for i, s := range sink.states {
		k := s.ev.Namespace + "/" + s.ev.Name
		if s.op == eventlog.OpCreate {
			require.False(t, created[k], "state %d recreates %s", i, k)
			created[k] = true
		} else {
			require.True(t, created[k], "state %d: %s of unknown %s", i, s.op, k)
		}
	}
}

func TestBackfillCancel(t *testing.T) {
	g, err := New(Config{Tenants: []scope.Scope{alpha}, Seed: 5})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = g.Backfill(ctx, &recordingSink{}, t0, t0.Add(time.Hour), 100)
	require.ErrorIs(t, err, context.Canceled)
}

func BenchmarkNext(b *testing.B) {
	g, err := New(Config{Tenants: []scope.Scope{alpha, beta, acme}, Seed: 1})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}
