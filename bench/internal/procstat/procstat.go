// Package procstat reads the CPU time and memory Linux accounts in /proc,
// for the benchmarks that report how many cores (and how much memory) each
// party of a run used.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// tick is one clock tick, the unit of /proc CPU times: USER_HZ is 100 on
// every Linux architecture Go supports.
const tick = 10 * time.Millisecond

// Fields returns the fields of a /proc/PID/stat file after the command name
// (state, ppid, ...). The name is in parentheses and may itself hold spaces
// and parentheses, so the split starts after the last ')'.
func Fields(stat []byte) []string {
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
		return strings.Fields(string(stat[i+1:]))
	}
	return nil
}

// ProcessCPU reads the user and system time process pid has used, fields 14
// and 15 of /proc/PID/stat (the 12th and 13th after the command name).
func ProcessCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := Fields(stat)
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: unexpected %q", pid, stat)
	}
	return sumTicks(f[11:13])
}

// Memory reads the resident memory of process pid in MiB now (VmRSS) and
// the most it ever had (VmHWM, the kernel's high-water mark), from
// /proc/PID/status.
func Memory(pid int) (rss, peak float64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	found := 0
	for _, line := range strings.Split(string(status), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || key != "VmRSS" && key != "VmHWM" {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %v", pid, key, err)
		}
		if key == "VmRSS" {
			rss = kb / 1024
		} else {
			peak = kb / 1024
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS and VmHWM", pid)
	}
	return rss, peak, nil
}

// MachineBusy reads the CPU time all cores together have spent busy since
// boot. The first line of /proc/stat is "cpu user nice system idle iowait
// irq softirq steal ..."; everything up to steal but idle and iowait is busy
// (guest time is already inside user and nice).
func MachineBusy() (time.Duration, error) {
	all, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(all), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	return sumTicks(append(f[1:4:4], f[6:9]...))
}

// sumTicks adds up clock-tick counts.
func sumTicks(fields []string) (time.Duration, error) {
	var sum int64
	for _, s := range fields {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse clock ticks: %w", err)
		}
		sum += t
	}
	return time.Duration(sum) * tick, nil
}

// Descendants returns the ids of every live process below pid.
func Descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if f := Fields(stat); len(f) > 2 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				parent[p] = pp
			}
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
