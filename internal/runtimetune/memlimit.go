package runtimetune

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// MemoryLimitAuto takes the soft memory limit from the container: the
// cgroup's memory limit less a tenth of it or 64 MiB, whichever is more, or
// no limit outside a limited cgroup.
const MemoryLimitAuto = "auto"

// autoMargin is the least room MemoryLimitAuto leaves under the cgroup's
// limit for memory the Go runtime does not count (the binary's pages,
// mostly), by which the API server's resident set exceeds its Go memory
// limit.
const autoMargin = 64 << 20

// cgroupRoot is where the process's cgroup files are; tests point it
// elsewhere.
var cgroupRoot = "/sys/fs/cgroup"

// memoryLimit resolves --runtime.memory-limit to bytes (0: no limit) and where the
// number came from, for the log.
func memoryLimit(flag string) (int64, string, error) {
	switch flag {
	case "", "0", "none":
		return 0, "", nil
	case MemoryLimitAuto:
		limit, file := cgroupMemoryLimit()
		if limit <= 0 {
			return 0, "", nil
		}
		margin := max(limit/10, autoMargin)
		if limit <= 2*margin {
			return 0, "", nil // too small to leave the margin and a useful heap
		}
		return limit - margin, file + " less " + strconv.FormatInt(margin>>20, 10) + " MiB", nil
	}
	q, err := resource.ParseQuantity(flag)
	if err != nil || q.Sign() <= 0 {
		return 0, "", fmt.Errorf("--runtime.memory-limit must be auto, 0 or a size such as 512Mi or 1G, got %q", flag)
	}
	return q.Value(), "--runtime.memory-limit", nil
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup (v2,
// then v1) and the file it came from; 0 when there is none.
func cgroupMemoryLimit() (int64, string) {
	for _, f := range []string{"memory.max", "memory/memory.limit_in_bytes"} {
		path := filepath.Join(cgroupRoot, f)
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, ""
		}
		n, err := strconv.ParseInt(s, 10, 64)
		// cgroup v1 says "no limit" with a number near the largest page
		// multiple of int64.
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0, ""
		}
		return n, path
	}
	return 0, ""
}
