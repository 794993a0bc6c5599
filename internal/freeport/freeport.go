// Package freeport picks loopback TCP ports for servers started on a port
// chosen in advance (clickhouse-server, etcd, kube-apiserver), which cannot
// be asked to listen on port 0 and report what they got.
package freeport

import (
	"fmt"
	"net"
)

// Ports returns n distinct TCP ports on 127.0.0.1 that nothing listens on
// now. They are free when chosen, not reserved: a caller whose server then
// finds its port taken picks again.
func Ports(n int) ([]int, error) {
	ports := make([]int, 0, n)
	// All n listeners stay open until every port is chosen, so that the
	// kernel does not hand out the same port twice.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
