package devtest

// This file runs several `eventpipe apiserver` processes as replicas of one
// installation: one JetStream log, one ClickHouse index and one writer (dev
// mode's, in the test process, without its simulated cluster), and API
// servers that are processes of their own, each with its own port,
// certificate and shared watch tail, as a Deployment with several replicas
// runs them. The tests in test/replicas and the benchmark in bench/replicas
// share it.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/apiserver"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

// ReplicaOptions shape a Replicas.
type ReplicaOptions struct {
	// Replicas is how many API server processes to start (at least 2).
	Replicas int
	// Tiers is the tiers file (docs/tiers.md) every replica enforces; empty
	// keeps dev mode's.
	Tiers string
	// Args are extra flags for every replica.
	Args []string
}

// Replicas is one installation with several API server replicas.
type Replicas struct {
	// Env is the dev stack that holds the log, the index and the writer.
	Env *devenv.Env
	// Dir is the dev stack's data directory: its kubeconfigs (admin and
	// tenants) and tokens.
	Dir     string
	Servers []*APIServer

	bin, work string
	replicas  int
	args      []string
	// env is every replica's environment: this process's, plus the key
	// that signs EventQuery continue tokens, shared as the chart shares it.
	env []string
}

// APIServer is one `eventpipe apiserver` process of a Replicas.
type APIServer struct {
	Name string
	// Port is the HTTPS port on 127.0.0.1, kept across restarts.
	Port    int
	certDir string
	logPath string
	env     []string
	// admin is the platform admin's kubeconfig, for readiness checks.
	admin  string
	args   []string
	cmd    *exec.Cmd
	exited chan error
}

// StartReplicas starts the dev stack and o.Replicas API servers on it, and stops
// them all when tb ends. It skips tb when clickhouse-server is not
// installed, and fails it when CI=true.
func StartReplicas(tb testing.TB, o ReplicaOptions) *Replicas {
	tb.Helper()
	if o.Replicas < 2 {
		tb.Fatalf("StartReplicas: Replicas must be at least 2, got %d", o.Replicas)
	}
	do := Options(tb)
	do.Writer.BatchWait = 50 * time.Millisecond
	do.EtcdPort = -1      // the etcd front is not part of what is tested
	do.Activities = false // nor the activity processor
	if o.Tiers != "" {
		if err := os.MkdirAll(do.DataDir, 0o755); err != nil {
			tb.Fatal(err)
		}
		// Dev mode keeps a tiers file it finds in its data directory.
		if err := os.WriteFile(filepath.Join(do.DataDir, "tiers.yaml"), []byte(o.Tiers), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	env := Run(tb, do)
	work := tb.TempDir()
	bin, err := BuildEventpipe(work)
	if err != nil {
		tb.Fatal(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	c := &Replicas{Env: env, Dir: do.DataDir, bin: bin, work: work, replicas: o.Replicas, args: o.Args,
		env: append(os.Environ(), apiserver.CursorKeyEnv+"="+base64.StdEncoding.EncodeToString(key))}
	for range o.Replicas {
		c.newServer(tb)
	}
	// Start them together, as a Deployment's pods start, then wait for each.
	for _, s := range c.Servers {
		s.launch(tb)
		tb.Cleanup(func() { s.Stop(tb) })
	}
	for _, s := range c.Servers {
		s.waitReady(tb)
	}
	return c
}

// newServer adds the next server, with the flags every replica gets
// followed by args (a flag given twice takes the later value), not started.
func (c *Replicas) newServer(tb testing.TB, args ...string) *APIServer {
	name := string(rune('a' + len(c.Servers)))
	s := &APIServer{Name: name, Port: FreePort(tb),
		certDir: filepath.Join(c.work, "certs-"+name), logPath: filepath.Join(c.work, "apiserver-"+name+".log"),
		admin: c.Env.Kubeconfig, env: c.env}
	s.args = append([]string{c.bin, "apiserver", "--nats.url", c.Env.NATSURL,
		"--clickhouse.addr", c.Env.ClickHouseAddr, "--clickhouse.database", c.Env.Database,
		"--token-auth-file", filepath.Join(c.Dir, "apiserver", "tokens.csv"), "--cert-dir", s.certDir,
		"--tiers.config", filepath.Join(c.Dir, "tiers.yaml"), "--tiers.replicas", strconv.Itoa(c.replicas),
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(s.Port), "--log-level", "warn"}, c.args...)
	s.args = append(s.args, args...)
	c.Servers = append(c.Servers, s)
	return s
}

// Add starts one more replica with extra flags (for instance another
// --nats.url) and waits until it is ready; it stops when tb ends.
func (c *Replicas) Add(tb testing.TB, args ...string) *APIServer {
	tb.Helper()
	s := c.newServer(tb, args...)
	s.launch(tb)
	tb.Cleanup(func() { s.Stop(tb) })
	s.waitReady(tb)
	return s
}

// launch starts the process without waiting for it to serve.
func (s *APIServer) launch(tb testing.TB) {
	tb.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = s.env
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		tb.Fatalf("start apiserver %s: %v", s.Name, err)
	}
	s.exited = make(chan error, 1)
	cmd, exited := s.cmd, s.exited
	go func() { exited <- cmd.Wait(); logf.Close() }()
}

// waitReady waits until the server answers /readyz with 200, and fails tb
// with the server's log when it exits first or is not ready in 2 minutes.
func (s *APIServer) waitReady(tb testing.TB) {
	tb.Helper()
	testenv.WaitFor(tb, "apiserver "+s.Name+" ready", 2*time.Minute, func() (bool, string) {
		select {
		case err := <-s.exited:
			s.exited <- err // for Stop
			tb.Fatalf("apiserver %s exited while starting: %v\n%s", s.Name, err, s.Log())
		default:
		}
		// The certificate exists once the server has written it.
		if _, err := os.Stat(s.CAFile()); err != nil {
			return false, err.Error() + "\n" + s.Log()
		}
		code, body, err := s.Readyz(tb)
		if err != nil {
			return false, err.Error() + "\n" + s.Log()
		}
		return code == http.StatusOK, fmt.Sprintf("%d %s\n%s", code, body, s.Log())
	})
}

// Readyz returns the status code and body of GET /readyz?verbose, as the
// platform admin, or the error of the request.
func (s *APIServer) Readyz(tb testing.TB) (int, string, error) {
	tb.Helper()
	rc := s.configFrom(tb, s.admin)
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return 0, "", err
	}
	resp, err := hc.Get(rc.Host + "/readyz?verbose")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// CAFile is the file of the server's self-signed certificate and its CA.
func (s *APIServer) CAFile() string { return filepath.Join(s.certDir, "apiserver.crt") }

func (s *APIServer) anonymous() *rest.Config {
	return &rest.Config{Host: "https://127.0.0.1:" + strconv.Itoa(s.Port), TLSClientConfig: rest.TLSClientConfig{CAFile: s.CAFile()}}
}

// Config is the client configuration of the user of the dev stack's
// kubeconfig file (kubeconfig, kubeconfig-project-alpha, …) against this
// server, unthrottled.
func (s *APIServer) Config(tb testing.TB, c *Replicas, kubeconfig string) *rest.Config {
	tb.Helper()
	return s.configFrom(tb, filepath.Join(c.Dir, kubeconfig))
}

func (s *APIServer) configFrom(tb testing.TB, path string) *rest.Config {
	tb.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Host = s.anonymous().Host
	cfg.TLSClientConfig = rest.TLSClientConfig{CAFile: s.CAFile()}
	cfg.QPS, cfg.Burst = -1, 0
	return cfg
}

// Client is Config's clientset.
func (s *APIServer) Client(tb testing.TB, c *Replicas, kubeconfig string) *kubernetes.Clientset {
	tb.Helper()
	cs, err := kubernetes.NewForConfig(s.Config(tb, c, kubeconfig))
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

// Kill ends the server with SIGKILL, as a crash or a node loss would.
func (s *APIServer) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	s.exited <- <-s.exited // keep the result for Stop
}

// Restart starts the server again on its port, certificate and flags, and
// waits until it is ready.
func (s *APIServer) Restart(tb testing.TB) {
	tb.Helper()
	s.launch(tb)
	s.waitReady(tb)
}

// Stop stops the server as an operator's rollout would (SIGINT), and waits.
func (s *APIServer) Stop(tb testing.TB) {
	tb.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case err := <-s.exited:
		s.exited <- err
		return // already ended
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-s.exited:
		s.exited <- err
	case <-time.After(time.Minute):
		tb.Errorf("apiserver %s did not stop within a minute of SIGINT; killing it", s.Name)
		s.Kill()
	}
}

// Log returns what the server wrote so far, for failure messages.
func (s *APIServer) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// WaitFor polls cond until it is true or timeout passes, and fails tb with
// what cond said last (testenv.WaitFor); cond's context ends at the
// timeout.
func WaitFor(tb testing.TB, what string, timeout time.Duration, cond func(ctx context.Context) (bool, string)) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	testenv.WaitFor(tb, what, timeout, func() (bool, string) { return cond(ctx) })
}
