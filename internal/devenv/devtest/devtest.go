// Package devtest runs eventpipe's dev mode inside a test process, without
// the simulated cluster, so tests can stop and start it on the same data
// directory and port.
package devtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/freeport"
	"github.com/eventpipe/eventpipe/internal/kubetest"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

// BuildEventpipe builds ./cmd/eventpipe into dir and returns the binary's
// path, for tests and benchmarks that run eventpipe as a process of its own.
func BuildEventpipe(dir string) (string, error) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "eventpipe")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/eventpipe")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/eventpipe: %v\n%s", err, out)
	}
	return bin, nil
}

// StopProcess stops an eventpipe process a test started as an operator's
// Ctrl-C would (SIGINT), and waits for it to exit; after a minute it kills
// it. Stopped that way, eventpipe stops the ClickHouse server it started
// and waits for it, so nothing writes into the test's temporary directories
// when they are removed (after SIGKILL, ClickHouse outlives its parent for
// a moment).
func StopProcess(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if cmd.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Errorf("%s did not stop within a minute of SIGINT; killing it", cmd.Path)
		_ = cmd.Process.Kill()
		<-done
	}
}

// Stack is eventpipe's dev mode without the simulated cluster, run in this
// process, that can be stopped and started again on the same data directory
// and the same API server port, so clients reconnect to the same URL.
type Stack struct {
	t      *testing.T
	o      devenv.Options
	cancel context.CancelFunc
	done   <-chan error
	Env    *devenv.Env
	// cfg is the admin's client configuration as of the first start: what
	// a long-running client (an informer, a controller) holds in memory. It
	// must stay valid across restarts: the URL (fixed port), the serving
	// certificate and the admin token all live in the data directory.
	Cfg *rest.Config
}

// New starts eventpipe; opts adjust the options first. It skips the test when clickhouse-server is not
// installed, and fails it when CI=true.
func New(t *testing.T, opts ...func(*devenv.Options)) *Stack {
	t.Helper()
	o := Options(t)
	o.Writer.BatchWait = 50 * time.Millisecond
	o.APIServerPort = FreePort(t)
	for _, f := range opts {
		f(&o)
	}
	s := &Stack{t: t, o: o}
	t.Cleanup(func() {
		if s.cancel != nil {
			s.Stop()
		}
	})
	s.Start()
	return s
}

// Options are devenv's defaults as tests and benchmarks run them: a private
// data directory under tb.TempDir() and no simulated cluster, so that only
// what the test writes is there; with EVENTPIPE_TEST_CLICKHOUSE=cluster
// (storetest.ModeEnv) the store is in cluster mode on the package's shared
// ClickHouse cluster. It skips tb when clickhouse-server is not
// installed, and fails it when CI=true.
func Options(tb testing.TB) devenv.Options {
	tb.Helper()
	chtest.RequireBinary(tb)
	o := devenv.DefaultOptions()
	o.DataDir = filepath.Join(tb.TempDir(), "data")
	o.Demo = false
	if storetest.ClusterMode() {
		// The stack's store in cluster mode, in a database of its own on
		// the package's shared cluster (the package's TestMain stops it).
		env := chtest.SharedCluster(tb)
		cfg := chstore.DefaultConfig()
		cfg.Addr, cfg.Cluster, cfg.Database = env.Addr(), env.Name, storetest.DatabaseName(tb)
		o.ClickHouse = &cfg
	}
	return o
}

// Run runs eventpipe with o until tb ends and returns it once it serves,
// for tests and benchmarks that need neither a restart nor a fixed port
// (New gives both). tb fails when eventpipe stops during start-up, is not
// ready within two minutes, or stops with an error at cleanup.
func Run(tb testing.TB, o devenv.Options) *devenv.Env {
	tb.Helper()
	env, cancel, done := start(tb, o)
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("eventpipe stopped with: %v", err)
		}
	})
	return env
}

// start runs devenv.Run with o and returns once it serves, with what stops
// it (cancel, then receive from done). tb fails when eventpipe stops during
// start-up or is not ready within two minutes; nothing is left running then.
func start(tb testing.TB, o devenv.Options) (env *devenv.Env, cancel context.CancelFunc, done <-chan error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	envc := make(chan *devenv.Env, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- devenv.Run(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil)), func(e *devenv.Env) { envc <- e })
	}()
	select {
	case env := <-envc:
		return env, cancel, errc
	case err := <-errc:
		cancel()
		tb.Fatalf("eventpipe stopped during start-up: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		<-errc
		tb.Fatal("eventpipe not ready in 2m")
	}
	return nil, nil, nil
}

// FreePort returns a loopback TCP port that nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := freeport.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// Start runs devenv.Run and waits until it is ready.
func (s *Stack) Start() {
	s.t.Helper()
	if s.cancel != nil {
		s.t.Fatal("stack already running")
	}
	s.Env, s.cancel, s.done = start(s.t, s.o)
	want := "https://127.0.0.1:" + strconv.Itoa(s.o.APIServerPort)
	if s.Env.APIServerURL != want {
		s.t.Fatalf("API server at %s, want %s", s.Env.APIServerURL, want)
	}
	if s.Cfg == nil {
		s.Cfg = s.CurrentConfig()
	}
}

// CurrentConfig reads the kubeconfig eventpipe wrote at its latest start,
// as kubectl does on every run.
func (s *Stack) CurrentConfig() *rest.Config {
	s.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Env.Kubeconfig)
	if err != nil {
		s.t.Fatalf("kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	return cfg
}

// Stop cancels devenv.Run and waits for it to return.
func (s *Stack) Stop() {
	s.t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("eventpipe stopped with: %v", err)
		}
	case <-time.After(60 * time.Second):
		s.t.Error("eventpipe did not stop within 60s")
	}
	s.cancel, s.done, s.Env = nil, nil, nil
}

// Restart stops eventpipe and starts it again on the same data directory
// and port, and returns how long that took.
func (s *Stack) Restart() time.Duration {
	s.t.Helper()
	start := time.Now()
	s.Stop()
	s.Start()
	return time.Since(start)
}

// Client returns a clientset for the admin from the current kubeconfig.
func (s *Stack) Client() *kubernetes.Clientset {
	s.t.Helper()
	return NewClient(s.t, s.CurrentConfig())
}

func NewClient(t *testing.T, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return cs
}
