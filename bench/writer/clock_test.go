package writerbench

import (
	"bytes"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
	if t.ch, err = processCPU(e.ch.PID()); err != nil {
		return t, fmt.Errorf("read clickhouse-server CPU time: %w", err)
	}
	if e.natsPID != 0 {
		if t.nats, err = processCPU(e.natsPID); err != nil {
			return t, fmt.Errorf("read JetStream CPU time: %w", err)
		}
	}
	// /proc/stat: "cpu user nice system idle iowait irq softirq steal ...";
	// everything but idle and iowait is busy.
	all, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t, fmt.Errorf("read machine CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(all), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return t, fmt.Errorf("read machine CPU time: unexpected /proc/stat line %q", line)
	}
	busy, err := sumTicks(append(f[1:4:4], f[6:9]...))
	if err != nil {
		return t, fmt.Errorf("read machine CPU time: %w", err)
	}
	t.machine = busy
	return t, nil
}

// processCPU reads a process's user and system time from /proc/PID/stat,
// fields 14 and 15: the 12th and 13th after the command name, which is in
// parentheses and may hold spaces.
func processCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	var f []string
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
		f = strings.Fields(string(stat[i+1:]))
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: unexpected %q", pid, stat)
	}
	return sumTicks(f[11:13])
}

// sumTicks adds clock ticks. USER_HZ is 100 on every Linux architecture Go
// supports.
func sumTicks(fields []string) (time.Duration, error) {
	var sum int64
	for _, s := range fields {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse clock ticks: %w", err)
		}
		sum += t
	}
	return time.Duration(sum) * 10 * time.Millisecond, nil
}
