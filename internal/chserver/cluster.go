package chserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/eventpipe/eventpipe/internal/freeport"
)

// Member is a server's place in a cluster: the cluster's layout (every
// server's native address, shard by shard), its own shard and replica (the
// {shard} and {replica} macros replicated tables name their ZooKeeper paths
// with) and the ZooKeeper that coordinates them.
type Member struct {
	// Name is the cluster's name in remote_servers (--clickhouse.cluster).
	Name string
	// Shards lists the native address of every replica, shard by shard.
	Shards [][]Addr
	// Shard and Replica are this server's macros.
	Shard, Replica string
	// ZooKeeper is host:port of the coordination service.
	ZooKeeper string
}

// Addr is a host and native-protocol port.
type Addr struct {
	Host string
	Port int
}

// ZooKeeperHost and ZooKeeperPort split Member.ZooKeeper for the template.
func (m *Member) ZooKeeperHost() string { h, _, _ := net.SplitHostPort(m.ZooKeeper); return h }

// ZooKeeperPort is the port of Member.ZooKeeper.
func (m *Member) ZooKeeperPort() string { _, p, _ := net.SplitHostPort(m.ZooKeeper); return p }

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// Dir holds one directory per server, s<shard>r<replica>.
	Dir string
	// Name is the cluster's name; default "eventpipe".
	Name string
	// Shards and Replicas give the layout; default 2 × 2.
	Shards, Replicas int
	// ZooKeeper is host:port of a running ZooKeeper.
	ZooKeeper string
}

// Cluster is a set of clickhouse-server processes forming one cluster:
// replicated tables on ZooKeeper, Distributed tables over the shards.
type Cluster struct {
	// Name is the cluster's name in remote_servers.
	Name string
	mu   sync.Mutex
	// nodes[shard][replica]; guarded by mu (Restart replaces a server).
	nodes [][]*Server
}

// StartCluster starts Shards × Replicas servers in parallel, each knowing
// the whole layout, and returns once all accept connections.
func StartCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	if o.Name == "" {
		o.Name = "eventpipe"
	}
	if o.Shards == 0 {
		o.Shards = 2
	}
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if o.ZooKeeper == "" {
		return nil, errors.New("start cluster: no ZooKeeper address given")
	}
	ports, err := freeport.Ports(o.Shards * o.Replicas)
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	layout := make([][]Addr, o.Shards)
	for s := range layout {
		for r := 0; r < o.Replicas; r++ {
			layout[s] = append(layout[s], Addr{Host: "127.0.0.1", Port: ports[s*o.Replicas+r]})
		}
	}
	c := &Cluster{Name: o.Name, nodes: make([][]*Server, o.Shards)}
	var wg sync.WaitGroup
	errs := make([]error, o.Shards*o.Replicas)
	for s := 0; s < o.Shards; s++ {
		c.nodes[s] = make([]*Server, o.Replicas)
		for r := 0; r < o.Replicas; r++ {
			wg.Add(1)
			go func(s, r int) {
				defer wg.Done()
				srv, err := Start(ctx, Options{
					Dir:     filepath.Join(o.Dir, fmt.Sprintf("s%dr%d", s+1, r+1)),
					TCPPort: layout[s][r].Port,
					Cluster: &Member{Name: o.Name, Shards: layout, Shard: strconv.Itoa(s + 1), Replica: fmt.Sprintf("r%d", r+1), ZooKeeper: o.ZooKeeper},
				})
				c.nodes[s][r], errs[s*o.Replicas+r] = srv, err
			}(s, r)
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	return c, nil
}

// Node returns the server of a shard's replica, both counted from 0.
func (c *Cluster) Node(shard, replica int) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[shard][replica]
}

// Shards returns the number of shards.
func (c *Cluster) Shards() int { return len(c.nodes) }

// Replicas returns the number of replicas per shard.
func (c *Cluster) Replicas() int { return len(c.nodes[0]) }

// Addr is the native address of the first server: any server of the
// cluster serves Distributed reads and writes.
func (c *Cluster) Addr() string { return c.Node(0, 0).Addr }

// Restart starts a stopped or killed replica again on its directory and port.
func (c *Cluster) Restart(ctx context.Context, shard, replica int) error {
	s, err := c.Node(shard, replica).Restart(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.nodes[shard][replica] = s
	c.mu.Unlock()
	return nil
}

// Stop stops every server and waits for them.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var wg sync.WaitGroup
	for _, shard := range c.nodes {
		for _, s := range shard {
			if s == nil {
				continue
			}
			wg.Add(1)
			go func(s *Server) { defer wg.Done(); _ = s.Stop() }(s)
		}
	}
	wg.Wait()
}
