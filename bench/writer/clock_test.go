package writerbench

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/bench/internal/procstat"
)

// clock is the timed part of a run.
type clock struct {
	start   time.Time
	cpu     cpuTimes
	profile *os.File
}

// cpuTimes is CPU time (user and system) used by each party.
type cpuTimes struct {
	self, nats, ch time.Duration
	// machine is every process on the machine, ours included.
	machine time.Duration
	// others is machine less ours; only set in a measure.
	others time.Duration
}

// measure is what a clock saw.
type measure struct {
	elapsed time.Duration
	cpu     cpuTimes
}

// startClock starts the benchmark timer, the optional CPU profile and the
// CPU accounting.
func (e *env) startClock(b *testing.B) *clock {
	b.Helper()
	clk := &clock{}
	if *cpuProfile != "" {
		_, variant, _ := strings.Cut(b.Name(), "/")
		f, err := os.Create(*cpuProfile + "." + variant + ".prof")
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		clk.profile = f
	}
	var err error
	if clk.cpu, err = e.cpuTimes(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	clk.start = time.Now()
	return clk
}

// stopClock stops what startClock started. It must run even when the timed
// part failed, so it returns its error instead of failing b.
func (e *env) stopClock(b *testing.B, clk *clock) (measure, error) {
	b.StopTimer()
	m := measure{elapsed: time.Since(clk.start)}
	now, err := e.cpuTimes()
	m.cpu = cpuTimes{
		self:    now.self - clk.cpu.self,
		nats:    now.nats - clk.cpu.nats,
		ch:      now.ch - clk.cpu.ch,
		machine: now.machine - clk.cpu.machine,
	}
	m.cpu.others = max(0, m.cpu.machine-m.cpu.self-m.cpu.nats-m.cpu.ch)
	if clk.profile != nil {
		pprof.StopCPUProfile()
		if cerr := clk.profile.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write CPU profile: %w", cerr)
		}
	}
	return m, err
}

// cpuTimes reads the CPU time used so far by this process, the JetStream
// child (if any), clickhouse-server and the whole machine.
func (e *env) cpuTimes() (cpuTimes, error) {
	var t cpuTimes
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return t, fmt.Errorf("read own CPU time: %w", err)
	}
	t.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var err error
	if t.ch, err = procstat.ProcessCPU(e.ch.PID()); err != nil {
		return t, fmt.Errorf("read clickhouse-server CPU time: %w", err)
	}
	if e.natsPID != 0 {
		if t.nats, err = procstat.ProcessCPU(e.natsPID); err != nil {
			return t, fmt.Errorf("read JetStream CPU time: %w", err)
		}
	}
	if t.machine, err = procstat.MachineBusy(); err != nil {
		return t, fmt.Errorf("read machine CPU time: %w", err)
	}
	return t, nil
}
