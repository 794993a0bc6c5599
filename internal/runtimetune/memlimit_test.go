package runtimetune

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	root := t.TempDir()
	old := cgroupRoot
	cgroupRoot = root
	t.Cleanup(func() { cgroupRoot = old })
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(flag string, want int64) {
		t.Helper()
		got, _, err := memoryLimit(flag)
		if err != nil {
			t.Fatalf("memoryLimit(%q): %v", flag, err)
		}
		if got != want {
			t.Fatalf("memoryLimit(%q) = %d, want %d", flag, got, want)
		}
	}

	check("auto", 0) // no cgroup files: no limit
	write("memory/memory.limit_in_bytes", "9223372036854771712\n")
	check("auto", 0) // cgroup v1's "unlimited"
	write("memory/memory.limit_in_bytes", "2147483648\n")
	check("auto", 2147483648-2147483648/10) // a tenth is more than 64 MiB
	write("memory.max", "max\n")
	check("auto", 0)                   // v2 wins, and says unlimited
	write("memory.max", "314572800\n") // 300 MiB
	check("auto", 314572800-64<<20)    // 64 MiB is more than a tenth
	write("memory.max", "100000000\n")
	check("auto", 0) // too small to leave the margin

	check("0", 0)
	check("none", 0)
	check("512Mi", 512<<20)
	check("1G", 1e9)
	for _, bad := range []string{"lots", "-1Mi", "0.5.5"} {
		if _, _, err := memoryLimit(bad); err == nil {
			t.Errorf("memoryLimit(%q): no error", bad)
		}
	}
	o := DefaultOptions()
	o.MemoryLimit = "lots"
	errs := o.Validate()
	if len(errs) != 1 || errs[0].Error() != `--runtime.memory-limit must be auto, 0 or a size such as 512Mi or 1G, got "lots"` {
		t.Fatalf("Validate: %v", errs)
	}
}
