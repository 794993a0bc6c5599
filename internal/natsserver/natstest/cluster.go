package natstest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/freeport"
	"github.com/eventpipe/eventpipe/internal/testenv"
)

// ClusterName is the name every test cluster's nodes share.
const ClusterName = "eventpipe-test"

// Cluster is a JetStream cluster of real nats-server processes on loopback,
// each with its own store directory and ports, so that a test can kill -9
// one (the leader of a stream) and start it again on the same directory
// and ports. The processes are the nats-server of go.mod's
// github.com/nats-io/nats-server/v2, built once per test binary: the same
// server code eventpipe embeds, and what production runs.
type Cluster struct {
	tb    testing.TB
	Nodes []*Node
	// NC and JS are a client connected to every node's URL: it moves to
	// another node when the one it is on dies, as eventpipe's do.
	NC *nats.Conn
	JS jetstream.JetStream
}

// Node is one nats-server process of a Cluster.
type Node struct {
	tb   testing.TB
	bin  string
	Name string
	Dir  string
	// Port, ClusterPort and MonitorPort are its client, route and HTTP
	// monitoring ports on 127.0.0.1; they stay across Restart.
	Port, ClusterPort, MonitorPort int
	conf                           string
	log                            string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartCluster starts an n-node cluster, waits until JetStream has a meta
// leader and every node is healthy, and stops every node at cleanup.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	bin := serverBinary(tb)
	ports, err := freeport.Ports(3 * n)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{tb: tb}
	root := tb.TempDir()
	for i := 0; i < n; i++ {
		nd := &Node{tb: tb, bin: bin, Name: fmt.Sprintf("n%d", i+1), Dir: filepath.Join(root, fmt.Sprintf("n%d", i+1)),
			Port: ports[3*i], ClusterPort: ports[3*i+1], MonitorPort: ports[3*i+2]}
		c.Nodes = append(c.Nodes, nd)
	}
	for _, nd := range c.Nodes {
		var routes []string
		for _, o := range c.Nodes {
			if o != nd {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.ClusterPort))
			}
		}
		if err := nd.writeConfig(routes); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		for _, nd := range c.Nodes {
			nd.Kill()
		}
	})
	for _, nd := range c.Nodes {
		nd.start()
	}
	for _, nd := range c.Nodes {
		nd.WaitHealthy()
	}
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	c.NC = nc
	if c.JS, err = jetstream.New(nc); err != nil {
		tb.Fatal(err)
	}
	c.waitPlacement(n)
	return c
}

// waitPlacement waits up to 30 s until the cluster places a stream on all
// n nodes: every node answering /healthz is not yet every node online in
// JetStream's meta layer, and a stream created in between is refused
// ("no suitable peers for placement, peer offline").
func (c *Cluster) waitPlacement(n int) {
	c.tb.Helper()
	testenv.WaitFor(c.tb, fmt.Sprintf("a stream placed on all %d nodes", n), 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "NATSTEST_PROBE", Subjects: []string{"natstest.probe"},
			Replicas: n, Storage: jetstream.MemoryStorage})
		if err == nil {
			err = c.JS.DeleteStream(ctx, "NATSTEST_PROBE")
		}
		return err == nil, fmt.Sprint(err)
	})
}

// URL is every node's client URL, comma-separated, as --nats.url takes it.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		urls[i] = nd.ClientURL()
	}
	return strings.Join(urls, ",")
}

// Node returns the node whose server name is name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, nd := range c.Nodes {
		if nd.Name == name {
			return nd
		}
	}
	return nil
}

// StreamLeader returns the node that leads stream now, waiting up to 30 s
// for the stream to have a leader that is one of the running nodes.
func (c *Cluster) StreamLeader(stream string) *Node {
	c.tb.Helper()
	var leader *Node
	testenv.WaitFor(c.tb, "stream "+stream+" led by a running node", 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := c.JS.Stream(ctx, stream)
		if err != nil {
			return false, err.Error()
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			return false, fmt.Sprint("no cluster info: ", err)
		}
		if leader = c.Node(info.Cluster.Leader); leader == nil || !leader.Running() {
			return false, fmt.Sprintf("leader %q", info.Cluster.Leader)
		}
		return true, ""
	})
	return leader
}

// ClientURL is the node's client URL.
func (nd *Node) ClientURL() string { return "nats://127.0.0.1:" + strconv.Itoa(nd.Port) }

// Log is the path of the node's log file (kept across restarts).
func (nd *Node) Log() string { return nd.log }

func (nd *Node) writeConfig(routes []string) error {
	if err := os.MkdirAll(nd.Dir, 0o755); err != nil {
		return err
	}
	nd.conf = filepath.Join(nd.Dir, "server.conf")
	nd.log = filepath.Join(nd.Dir, "server.log")
	// The server's default sync interval, as production runs it: with R3
	// an acknowledged write is on two nodes, and kill -9 of a process
	// does not drop what it wrote to the page cache. max_file_store is a reservation, not a use: it is large enough for
	// eventpipe's default stream bounds (EVENTS' 8 GiB and the rest).
	conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
max_payload: 8MB
jetstream {
  store_dir: %q
  max_file_store: 32GB
  max_memory_store: 64MB
}
cluster {
  name: %s
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, nd.Name, nd.Port, nd.MonitorPort, filepath.Join(nd.Dir, "js"), ClusterName, nd.ClusterPort, strings.Join(routes, ", "))
	return os.WriteFile(nd.conf, []byte(conf), 0o644)
}

func (nd *Node) start() {
	nd.tb.Helper()
	f, err := os.OpenFile(nd.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		nd.tb.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(nd.bin, "-c", nd.conf)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, and killed with the test binary should that
	// die before its cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		nd.tb.Fatalf("start nats-server %s: %v", nd.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	nd.mu.Lock()
	nd.cmd, nd.done = cmd, done
	nd.mu.Unlock()
}

// Running reports whether the node's process runs.
func (nd *Node) Running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.done == nil {
		return false
	}
	select {
	case <-nd.done:
		return false
	default:
		return true
	}
}

// Kill sends the node SIGKILL (kill -9) and waits until it has exited. A
// node that does not run is left as it is.
func (nd *Node) Kill() {
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts a killed node again on its directory and ports and waits
// until it is healthy (caught up with the cluster's JetStream state).
func (nd *Node) Restart() {
	nd.tb.Helper()
	if nd.Running() {
		nd.tb.Fatalf("restart %s: it is still running", nd.Name)
	}
	nd.start()
	nd.WaitHealthy()
}

// WaitHealthy waits up to a minute for the node's /healthz to answer 200:
// it serves clients, is in the cluster and its JetStream is current.
func (nd *Node) WaitHealthy() {
	nd.tb.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", nd.MonitorPort)
	hc := &http.Client{Timeout: 2 * time.Second}
	testenv.WaitFor(nd.tb, "nats-server "+nd.Name+" healthy (log "+nd.log+")", time.Minute, func() (bool, string) {
		if !nd.Running() {
			nd.tb.Fatalf("nats-server %s exited; see %s", nd.Name, nd.log)
		}
		resp, err := hc.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("%d %s", resp.StatusCode, b[:n])
	})
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// serverBinary builds go.mod's nats-server into the user's cache directory,
// once per version: a rebuild is only needed when go.mod moves to another
// release.
func serverBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() { buildBin, buildErr = buildServer() })
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildBin
}

func buildServer() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "eventpipe-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "nats-server-"+server.VERSION)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	// Built to a private name and renamed: test binaries of several
	// packages may build at once.
	tmp, err := os.CreateTemp(dir, "nats-server-build-")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	out, err := exec.Command("go", "build", "-o", tmp.Name(), "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build github.com/nats-io/nats-server/v2: %v\n%s", err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}
