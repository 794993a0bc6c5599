package eventlog

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// BenchmarkStreamCost is JetStream's own share of every ingested event: the
// CPU this process (nats.go and the embedded server) spends to store one
// event-sized message on EVENTS, acknowledged, in rounds of 1,000
// asynchronous publishes as PublishAll does, and to deliver it to a writer
// fetching 1,000 at a time. Each message has its own subject, as each event
// does. With id=true every message carries a Nats-Msg-Id, as every eventpipe
// publish does, so that retries store nothing twice; id=false shows what
// the server's duplicate tracking costs. It is the floor under any batched
// ingest rate on this machine (bench/README.md, "Floors of the parts").
func BenchmarkStreamCost(b *testing.B) {
	for _, withID := range []bool{true, false} {
		b.Run(fmt.Sprint("id=", withID), func(b *testing.B) {
			ns := eventsStream(b)
			ctx := context.Background()
			body := make([]byte, 1000) // an event state in protobuf is 0.6-1.2 KB
			msgs := make([]*nats.Msg, b.N)
			for i := range msgs {
				k := Key{Scope: scope.Scope{Type: scope.TypeProject, Name: fmt.Sprintf("project-%02d", i%20)},
					Namespace: fmt.Sprintf("ns-%d", i%50), Name: fmt.Sprintf("pod-%d.%x", i%5000, i)}
				m := nats.NewMsg(Subject(k))
				m.Header.Set(HeaderOp, OpCreate.String())
				m.Header.Set(HeaderCodec, codecProtoV1)
				m.Data = body
				msgs[i] = m
			}
			b.ResetTimer()
			c0, t0 := processCPU(b), time.Now()
			publishRounds(b, ns.JS, func(j int) (*nats.Msg, []jetstream.PublishOpt) {
				opts := []jetstream.PublishOpt{jetstream.WithExpectStream(StreamName)}
				if withID {
					opts = append(opts, jetstream.WithMsgID(fmt.Sprint("id-", j)))
				}
				return msgs[j], opts
			})
			pubCPU, pubWall := processCPU(b)-c0, time.Since(t0)
			cons, err := ns.JS.CreateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
				Durable: "cost", AckPolicy: jetstream.AckAllPolicy, MaxAckPending: 3000})
			if err != nil {
				b.Fatal(err)
			}
			c1 := processCPU(b)
			for got := 0; got < b.N; {
				mb, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
				if err != nil {
					b.Fatal(err)
				}
				var last jetstream.Msg
				for m := range mb.Messages() {
					got++
					last = m
				}
				if last == nil {
					b.Fatalf("fetch returned nothing after %d of %d messages: %v", got, b.N, mb.Error())
				}
				if err := last.Ack(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			consCPU := processCPU(b) - c1
			b.ReportMetric(float64(pubCPU.Nanoseconds())/1e3/float64(b.N), "publish-cpu-µs/msg")
			b.ReportMetric(float64(consCPU.Nanoseconds())/1e3/float64(b.N), "deliver-cpu-µs/msg")
			b.ReportMetric(float64(b.N)/pubWall.Seconds(), "publish-msgs/s")
		})
	}
}

// publishRounds publishes messages 0 to b.N-1, as msg makes them, in
// rounds of 1,000 asynchronous publishes with one wait for each round's
// acknowledgements, as PublishAll does.
func publishRounds(b *testing.B, js jetstream.JetStream, msg func(j int) (*nats.Msg, []jetstream.PublishOpt)) {
	for i := 0; i < b.N; i += 1000 {
		futs := make([]jetstream.PubAckFuture, 0, 1000)
		for j := i; j < min(i+1000, b.N); j++ {
			m, opts := msg(j)
			f, err := js.PublishMsgAsync(m, opts...)
			if err != nil {
				b.Fatal(err)
			}
			futs = append(futs, f)
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
	}
}

// processCPU is this process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStreamMemory is what the JetStream server keeps in memory for
// the states in EVENTS, beyond the messages' bytes (which are on disk): per
// event, since each event has a subject of its own (subject=distinct), and
// per message id remembered for the duplicate window (ids=true against
// ids=false). For contrast, subject=shared puts every state on 100
// subjects. It reports the growth of this process's heap (where the
// embedded server lives) per message published, after a collection.
func BenchmarkStreamMemory(b *testing.B) {
	for _, c := range []struct {
		name     string
		distinct bool
		ids      bool
	}{{"subject=distinct/ids=false", true, false}, {"subject=distinct/ids=true", true, true}, {"subject=shared/ids=false", false, false}} {
		b.Run(c.name, func(b *testing.B) {
			ns := eventsStream(b)
			body := make([]byte, 1000)
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			b.ResetTimer()
			publishRounds(b, ns.JS, func(j int) (*nats.Msg, []jetstream.PublishOpt) {
				name := fmt.Sprintf("pod-%d", j%100)
				if c.distinct {
					name = fmt.Sprintf("pod-%d.%x", j%5000, j)
				}
				m := nats.NewMsg(Subject(Key{Scope: scope.Scope{Type: scope.TypeProject, Name: "p"}, Namespace: "ns", Name: name}))
				m.Data = body
				var opts []jetstream.PublishOpt
				if c.ids {
					opts = append(opts, jetstream.WithMsgID(fmt.Sprintf("create/%08x-1234-5678-9abc-def012345678", j)))
				}
				return m, opts
			})
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&m1)
			b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/float64(b.N), "heap-B/msg")
		})
	}
}
