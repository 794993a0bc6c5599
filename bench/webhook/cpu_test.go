package webhookbench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/eventpipe/eventpipe/bench/internal/procstat"
)

// treeCPU is the CPU time of this process and of every process it started
// (clickhouse-server), from /proc/<pid>/stat, each read once.
func treeCPU() (self, children time.Duration) {
	me := strconv.Itoa(os.Getpid())
	var walk func(pid string)
	walk = func(pid string) {
		// A process gone meanwhile counts nothing.
		n, _ := strconv.Atoi(pid)
		cpu, _ := procstat.ProcessCPU(n)
		if pid == me {
			self = cpu
		} else {
			children += cpu
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

// cpuMeter measures, over an interval, the CPU of this process tree, of
// its children (clickhouse-server) alone, and of the rest of the machine
// (other-cores: anything well above 0 means the run shared the machine).
type cpuMeter struct {
	t0                   time.Time
	busy0, self0, child0 time.Duration
}

func startCPU() *cpuMeter {
	busy, _ := procstat.MachineBusy()
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
	busy, _ := procstat.MachineBusy()
	self, child := treeCPU()
	u := cpuUse{wall: time.Since(m.t0), self: self - m.self0, children: child - m.child0}
	w := u.wall.Seconds()
	u.ownCores = (u.self + u.children).Seconds() / w
	u.childCores = u.children.Seconds() / w
	u.otherCores = max(0, (busy-m.busy0-u.self-u.children).Seconds()/w)
	return u
}
