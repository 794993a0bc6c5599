package webhookbench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc CPU times (100 on Linux).
const clockTicks = 100

// machineBusy is the CPU time all cores spent not idle, from /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// treeCPU is the CPU time of this process and of every process it started
// (clickhouse-server), from /proc/<pid>/stat, each read once.
func treeCPU() (self, children time.Duration) {
	me := strconv.Itoa(os.Getpid())
	var walk func(pid string)
	walk = func(pid string) {
		if pid == me {
			self = procCPU(pid)
		} else {
			children += procCPU(pid)
		}
		tasks, _ := filepath.Glob(filepath.Join("/proc", pid, "task", "*", "children"))
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
			for _, c := range strings.Fields(string(b)) {
				walk(c)
			}
		}
	}
	walk(me)
	return self, children
}

// procCPU is one process's CPU time (all its threads): utime and stime,
// the 12th and 13th fields after the command's closing parenthesis.
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) <= 12 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / clockTicks
}

// cpuMeter measures, over an interval, the CPU of this process tree, of
// its children (clickhouse-server) alone, and of the rest of the machine
// (other-cores: anything well above 0 means the run shared the machine).
type cpuMeter struct {
	t0                   time.Time
	busy0, self0, child0 time.Duration
}

func startCPU() *cpuMeter {
	busy, _ := machineBusy()
	self, child := treeCPU()
	return &cpuMeter{t0: time.Now(), busy0: busy, self0: self, child0: child}
}

// cpuUse is what a cpuMeter measured.
type cpuUse struct {
	wall           time.Duration
	self, children time.Duration // CPU time of this process, of its children
	ownCores       float64       // (self+children) per wall second
	childCores     float64       // children per wall second
	otherCores     float64       // the rest of the machine per wall second
}

func (m *cpuMeter) stop() cpuUse {
	busy, _ := machineBusy()
	self, child := treeCPU()
	u := cpuUse{wall: time.Since(m.t0), self: self - m.self0, children: child - m.child0}
	w := u.wall.Seconds()
	u.ownCores = (u.self + u.children).Seconds() / w
	u.childCores = u.children.Seconds() / w
	u.otherCores = max(0, (busy-m.busy0-u.self-u.children).Seconds()/w)
	return u
}
