// Package e2e drives the eventpipe binary as a user would.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// buildBinary compiles eventpipe once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	chtest.RequireBinary(t)
	bin, err := devtest.BuildEventpipe(t.TempDir())
	require.NoError(t, err)
	return bin
}

type devProcess struct {
	cmd   *exec.Cmd
	ready chan struct{}
	mu    sync.Mutex // guards out
	out   strings.Builder
}

// output returns what the process has printed so far.
func (p *devProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startDev runs `eventpipe dev` and returns once it has printed that it is
// ready, which must happen within the minute the README promises.
func startDev(t *testing.T, bin, dir string, args ...string) *devProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev", "--data-dir", dir, "--demo.backfill", "3000"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	logs, err := os.Create(filepath.Join(t.TempDir(), "dev.log"))
	require.NoError(t, err)
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	p := &devProcess{cmd: cmd, ready: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.Contains(sc.Text(), "eventpipe dev is ready") {
				close(p.ready)
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	select {
	case <-p.ready:
	case <-time.After(60 * time.Second):
		b, _ := os.ReadFile(logs.Name())
		t.Fatalf("eventpipe dev not ready within 60s\nstdout:\n%s\nstderr:\n%s", p.output(), b)
	}
	return p
}

// stop sends SIGTERM and expects a clean exit with its ClickHouse child gone.
func (p *devProcess) stop(t *testing.T, chPID int) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "eventpipe dev must exit 0 on SIGTERM")
	case <-time.After(60 * time.Second):
		t.Fatal("eventpipe dev did not stop within 60s of SIGTERM")
	}
	require.Error(t, syscall.Kill(chPID, 0), "clickhouse-server child %d still running after eventpipe stopped", chPID)
}

func readEnv(t *testing.T, dir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "dev.env"))
	require.NoError(t, err)
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, line)
		env[k] = v
	}
	return env
}

// countStates counts the event states stored (each once): it never shrinks,
// whatever the states are (a delete is a state too).
func countStates(t *testing.T, addr string) uint64 {
	t.Helper()
	cfg := chstore.DefaultConfig()
	cfg.Addr = addr
	s, err := chstore.Open(context.Background(), cfg)
	require.NoError(t, err)
	defer s.Close()
	var n uint64
	require.NoError(t, s.Conn().QueryRow(context.Background(), "SELECT uniqExact(seq) FROM eventpipe.events").Scan(&n))
	return n
}

func clickhousePID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "clickhouse", "data", "status"))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PID: "); ok {
			var pid int
			_, err := fmt.Sscan(strings.TrimSpace(v), &pid)
			require.NoError(t, err)
			return pid
		}
	}
	t.Fatalf("no PID in clickhouse status file:\n%s", b)
	return 0
}

func TestDevModeIsReadyAndKeepsDataAcrossRestart(t *testing.T) {
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "data")

	p := startDev(t, bin, dir, "--demo.rate", "200")
	env := readEnv(t, dir)
	require.NotEmpty(t, env["EVENTPIPE_NATS_URL"])
	first := countStates(t, env["EVENTPIPE_CLICKHOUSE_ADDR"])
	require.Greater(t, first, uint64(1000), "the backfilled history is queryable when dev says ready")
	require.Contains(t, p.output(), "clickhouse-client --port")
	// The simulated cluster keeps writing.
	require.Eventually(t, func() bool { return countStates(t, env["EVENTPIPE_CLICKHOUSE_ADDR"]) > first },
		30*time.Second, 200*time.Millisecond)
	before := countStates(t, env["EVENTPIPE_CLICKHOUSE_ADDR"])
	p.stop(t, clickhousePID(t, dir))

	// Restart without the generator: the same events are still there.
	p = startDev(t, bin, dir, "--demo=false")
	env = readEnv(t, dir)
	require.GreaterOrEqual(t, countStates(t, env["EVENTPIPE_CLICKHOUSE_ADDR"]), before)
	// Stopped as an operator stops it, so that its ClickHouse is gone before
	// the data directory is removed (a kill leaves it writing there a while,
	// and the directory's removal then fails on a busy machine).
	p.stop(t, clickhousePID(t, dir))
}
