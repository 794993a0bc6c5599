package apiserverbench

import (
	"flag"
	"os"
	"regexp"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/bench/internal/load"
	"github.com/eventpipe/eventpipe/bench/internal/procstat"
)

var cpuProfile = flag.String("apibench.cpuprofile", "",
	"write a CPU profile of the timed part of each sub-benchmark to PREFIX.<sub-benchmark>.prof; eventpipe runs in this process, so its profiles show server, JetStream and load client")

// reportLatency reports p50, p99 and max of l in milliseconds as
// PREFIX-p50-ms and so on.
func reportLatency(b *testing.B, prefix string, l load.Latencies) {
	b.ReportMetric(load.MS(l.Pct(0.50)), prefix+"-p50-ms")
	b.ReportMetric(load.MS(l.Pct(0.99)), prefix+"-p99-ms")
	b.ReportMetric(load.MS(l.Max()), prefix+"-max-ms")
}

// clock is the timed part of a run: wall time, CPU time of this process
// (the load client, and for eventpipe the server, JetStream and writer
// too), of its child processes (kube-apiserver and etcd, or
// clickhouse-server) and of the whole machine, and an optional CPU profile.
type clock struct {
	start   time.Time
	cpu     cpuTimes
	profile *os.File
}

type cpuTimes struct {
	self, children, machine time.Duration
}

// measure is what a clock saw.
type measure struct {
	elapsed time.Duration
	// self and children as above; others is the rest of the machine, which
	// should be near zero: other work on the machine skews the numbers.
	self, children, others time.Duration
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._=-]+`)

func startClock(b *testing.B) *clock {
	b.Helper()
	c := &clock{}
	if *cpuProfile != "" {
		_, sub, _ := strings.Cut(b.Name(), "/")
		f, err := os.Create(*cpuProfile + "." + unsafeName.ReplaceAllString(sub, "_") + ".prof")
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		c.profile = f
	}
	c.cpu = readCPU(b)
	b.ResetTimer()
	c.start = time.Now()
	return c
}

func (c *clock) stop(b *testing.B) measure {
	b.Helper()
	b.StopTimer()
	m := measure{elapsed: time.Since(c.start)}
	now := readCPU(b)
	if c.profile != nil {
		pprof.StopCPUProfile()
		if err := c.profile.Close(); err != nil {
			b.Error(err)
		}
	}
	m.self = now.self - c.cpu.self
	m.children = now.children - c.cpu.children
	m.others = max(0, now.machine-c.cpu.machine-m.self-m.children)
	return m
}

// report reports the CPU the client and server used per op and how many
// cores the rest of the machine used meanwhile.
func (m measure) report(b *testing.B, ops float64, unit string) {
	if ops > 0 {
		b.ReportMetric(float64((m.self+m.children).Microseconds())/ops, "cpu-µs/"+unit)
	}
	b.ReportMetric(m.self.Seconds()/m.elapsed.Seconds(), "self-cores")
	b.ReportMetric(m.children.Seconds()/m.elapsed.Seconds(), "child-cores")
	b.ReportMetric(m.others.Seconds()/m.elapsed.Seconds(), "other-cores")
}

func readCPU(b *testing.B) cpuTimes {
	var t cpuTimes
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	t.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, pid := range procstat.Descendants(os.Getpid()) {
		if d, err := procstat.ProcessCPU(pid); err == nil {
			t.children += d
		}
	}
	var err error
	if t.machine, err = procstat.MachineBusy(); err != nil {
		b.Fatal(err)
	}
	return t
}
