package procstat

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFieldsSkipsACommandNameWithSpacesAndParentheses(t *testing.T) {
	f := Fields([]byte("42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0\n"))
	require.Equal(t, []string{"S", "1"}, f[:2])
	require.Equal(t, []string{"7", "3"}, f[11:13], "utime and stime")
	require.Nil(t, Fields([]byte("no name")))
}

func TestProcessCPUAndMachineBusyRead(t *testing.T) {
	// Work until the kernel has charged this process a clock tick; the
	// deadline keeps a broken reader from spinning forever.
	var self time.Duration
	deadline := time.Now().Add(10 * time.Second)
	sink := 0
	for self == 0 {
		require.True(t, time.Now().Before(deadline), "no CPU time charged to this process")
		for i := range 1_000_000 {
			sink ^= i
		}
		var err error
		self, err = ProcessCPU(os.Getpid())
		require.NoError(t, err)
	}
	_ = sink
	busy, err := MachineBusy()
	require.NoError(t, err)
	require.GreaterOrEqual(t, busy, self, "the machine was busy at least as long as this process")

	_, err = ProcessCPU(-1)
	require.Error(t, err)
}

func TestMemoryOfThisProcess(t *testing.T) {
	rss, peak, err := Memory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || peak < rss {
		t.Fatalf("rss %.1f MiB, peak %.1f MiB: want 0 < rss <= peak", rss, peak)
	}
	if _, _, err := Memory(-1); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
