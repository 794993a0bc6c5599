// Package chserver runs a private clickhouse-server process: for `eventpipe dev`
// and for tests, which must never touch a system-wide instance.
//
// The server gets its own configuration, data directory and free loopback
// ports, and is stopped (and waited for) by Stop.
package chserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"text/template"
	"time"

	"github.com/eventpipe/eventpipe/internal/freeport"
)

// Binary is the program Start looks for on PATH.
const Binary = "clickhouse-server"

// ErrNotInstalled is returned by Start when clickhouse-server is not on PATH.
var ErrNotInstalled = errors.New(Binary + " is not installed (on Debian: apt-get install -y clickhouse-server clickhouse-client)")

// Options configure a server.
type Options struct {
	// Dir holds the configuration, data and logs. Data persists across
	// restarts with the same Dir.
	Dir string
	// TCPPort is the native-protocol port; 0 picks a free one.
	TCPPort int
	// Stdout receives the server's console output; nil discards it.
	Stdout *os.File
	// StartTimeout bounds how long Start waits for the port; default 60s.
	StartTimeout time.Duration
	// Cluster, when set, makes the server one replica of a cluster (see
	// StartCluster).
	Cluster *Member
	// LoadBalancing is the default user's load_balancing setting; empty
	// means in_order, what eventpipe's cluster mode asks of its user.
	LoadBalancing string
}

// Server is a running clickhouse-server child process.
type Server struct {
	// Addr is host:port of the native protocol.
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
	// cluster and loadBalancing are the options the server was started
	// with, for Restart.
	cluster       *Member
	loadBalancing string
}

// Start writes a configuration under opts.Dir and starts the server, returning
// once it accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := exec.LookPath(Binary)
	if err != nil {
		return nil, ErrNotInstalled
	}
	if opts.Dir == "" {
		return nil, errors.New("start clickhouse-server: no directory given")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("start clickhouse-server: %w", err)
	}
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("start clickhouse-server: %w", err)
		}
	}
	ports, err := freeport.Ports(3)
	if err != nil {
		return nil, fmt.Errorf("start clickhouse-server: %w", err)
	}
	if opts.TCPPort != 0 {
		ports[0] = opts.TCPPort
	}
	cfgPath := filepath.Join(dir, "config.xml")
	if err := writeTemplate(cfgPath, configTemplate, map[string]any{
		"Dir": dir, "TCPPort": ports[0], "HTTPPort": ports[1], "InterserverPort": ports[2], "Cluster": opts.Cluster,
	}); err != nil {
		return nil, fmt.Errorf("start clickhouse-server: %w", err)
	}
	lb := opts.LoadBalancing
	if lb == "" {
		lb = "in_order"
	}
	if err := writeTemplate(filepath.Join(dir, "users.xml"), usersXML, map[string]any{"LoadBalancing": lb}); err != nil {
		return nil, fmt.Errorf("start clickhouse-server: %w", err)
	}
	// A previous run killed hard leaves a status file behind holding the
	// old PID; clickhouse-server refuses to start only if that PID is alive.
	cmd := exec.Command(bin, "--config-file="+cfgPath)
	cmd.Dir = dir
	// 18.16 ignores SIGTERM when its stdout is /dev/null (seen here: stop
	// then takes the full SIGKILL timeout), so console output always goes
	// somewhere real.
	out := opts.Stdout
	if out == nil {
		f, err := os.OpenFile(filepath.Join(dir, "log", "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("start clickhouse-server: %w", err)
		}
		defer f.Close() // the child keeps its own descriptor
		out = f
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so a Ctrl-C in the terminal reaches eventpipe
	// first and eventpipe stops the server in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start clickhouse-server: %w", err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), dir: dir, cmd: cmd, done: make(chan struct{}), cluster: opts.Cluster, loadBalancing: opts.LoadBalancing}
	go func() { s.err = cmd.Wait(); close(s.done) }()

	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("start clickhouse-server: exited early (%v); see %s", s.err, filepath.Join(dir, "log", "err.log"))
		case <-ctx.Done():
			_ = s.Stop()
			return nil, fmt.Errorf("start clickhouse-server: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.Stop()
			return nil, fmt.Errorf("start clickhouse-server: %s not accepting connections after %s; see %s", s.Addr, timeout, filepath.Join(dir, "log", "err.log"))
		}
	}
}

// Dir returns the server's directory.
func (s *Server) Dir() string { return s.dir }

// PID returns the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop ends the server with SIGTERM and waits for it (SIGKILL after 30s).
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return nil
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart starts a new process on the same directory and port, after Kill or
// Stop, with the same cluster membership.
func (s *Server) Restart(ctx context.Context) (*Server, error) {
	_, port, _ := net.SplitHostPort(s.Addr)
	p, _ := strconv.Atoi(port)
	return Start(ctx, Options{Dir: s.dir, TCPPort: p, Stdout: nil, Cluster: s.cluster, LoadBalancing: s.loadBalancing})
}

func writeTemplate(path, text string, data any) error {
	var buf bytes.Buffer
	if err := template.Must(template.New("").Parse(text)).Execute(&buf, data); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// The configuration keeps to what ClickHouse 18.16 understands and newer
// servers still accept. zstd block compression is what keeps disk per event
// low (see bench/README.md); LZ4 is the server default.
const configTemplate = `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>{{.Dir}}/log/server.log</log>
    <errorlog>{{.Dir}}/log/err.log</errorlog>
    <size>50M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{{.TCPPort}}</tcp_port>
  <http_port>{{.HTTPPort}}</http_port>
  <interserver_http_port>{{.InterserverPort}}</interserver_http_port>
  <path>{{.Dir}}/data/</path>
  <tmp_path>{{.Dir}}/tmp/</tmp_path>
  <user_files_path>{{.Dir}}/user_files/</user_files_path>
  <format_schema_path>{{.Dir}}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>536870912</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
{{- with .Cluster}}
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <zookeeper>
    <node><host>{{.ZooKeeperHost}}</host><port>{{.ZooKeeperPort}}</port></node>
    <session_timeout_ms>5000</session_timeout_ms>
  </zookeeper>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <macros><shard>{{.Shard}}</shard><replica>{{.Replica}}</replica></macros>
  <remote_servers>
    <{{.Name}}>
{{- range .Shards}}
      <shard>
        <internal_replication>true</internal_replication>
{{- range .}}
        <replica><host>{{.Host}}</host><port>{{.Port}}</port></replica>
{{- end}}
      </shard>
{{- end}}
    </{{.Name}}>
  </remote_servers>
{{- end}}
  <compression>
    <case>
      <min_part_size>0</min_part_size>
      <min_part_size_ratio>0</min_part_size_ratio>
      <method>zstd</method>
    </case>
  </compression>
</yandex>
`

const usersXML = `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <use_uncompressed_cache>0</use_uncompressed_cache>
      <!-- What eventpipe's cluster mode asks of its user: reads and writes
           to the same replica of each shard (docs/clickhouse-cluster.md).
           No effect on a single server. -->
      <load_balancing>{{.LoadBalancing}}</load_balancing>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
        <read_rows>0</read_rows><execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`
