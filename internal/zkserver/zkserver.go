// Package zkserver runs a private, standalone ZooKeeper process (Debian's
// zookeeper package) for tests of ClickHouse's replicated tables, which keep
// their replication log and distributed DDL queue in ZooKeeper.
//
// The server gets its own data directory and a free loopback port, and is
// stopped (and waited for) by Stop.
package zkserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/eventpipe/eventpipe/internal/freeport"
)

// Jar is the ZooKeeper server Debian's zookeeper package installs; its
// manifest names the libraries it needs, so it is the whole class path.
const Jar = "/usr/share/java/zookeeper.jar"

// ErrNotInstalled is returned by Start when ZooKeeper or Java is missing.
var ErrNotInstalled = errors.New("ZooKeeper is not installed (on Debian: apt-get install -y zookeeper, which brings the Java runtime)")

// Server is a running ZooKeeper child process.
type Server struct {
	// Addr is host:port of the client protocol.
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

// Start writes a configuration under dir and starts a standalone server,
// returning once it serves requests.
func Start(ctx context.Context, dir string) (*Server, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, ErrNotInstalled
	}
	if _, err := os.Stat(Jar); err != nil {
		return nil, ErrNotInstalled
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("start zookeeper: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("start zookeeper: %w", err)
	}
	ports, err := freeport.Ports(1)
	if err != nil {
		return nil, fmt.Errorf("start zookeeper: %w", err)
	}
	// A short tick keeps session timeouts (2-20 ticks) short, so a killed
	// ClickHouse replica's ephemeral nodes go away in seconds, not minutes.
	cfg := fmt.Sprintf("tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"maxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=srvr\nforceSync=no\n",
		filepath.Join(dir, "data"), ports[0])
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("start zookeeper: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start zookeeper: %w", err)
	}
	defer logf.Close() // the child keeps its own descriptor
	// A small heap and one compiler thread: it holds a few thousand znodes
	// on a machine whose cores the tests share.
	cmd := exec.Command(java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", Jar, "org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start zookeeper: %w", err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if s.serving() {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("start zookeeper: exited early (%v); see %s", s.err, logf.Name())
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("start zookeeper: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("start zookeeper: %s not answering after 60s; see %s", s.Addr, logf.Name())
		}
	}
}

// serving asks the server for its status with the "srvr" four-letter
// command: it reports its mode once it serves sessions. ("ruok" answers
// "imok" earlier, while sessions are still refused; a clickhouse-server
// 18.16 whose first ZooKeeper session fails that way crashes on its first
// ON CLUSTER query.)
func (s *Server) serving() bool {
	c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	out, _ := io.ReadAll(c)
	return bytes.Contains(out, []byte("Mode: standalone"))
}

// PID returns the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop ends the server with SIGTERM and waits for it (SIGKILL after 10s).
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
