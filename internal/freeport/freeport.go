// Package freeport picks loopback TCP ports for servers started on a port
// chosen in advance (clickhouse-server, etcd, kube-apiserver, an eventpipe
// restarted on the port it had), which cannot be asked to listen on port 0
// and report what they got.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Ports returns n distinct TCP ports on 127.0.0.1 that nothing listens on
// now. They are free when chosen, not reserved.
//
// They are chosen below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), from which it takes the local port of
// every outgoing connection and of every listen on port 0. A port chosen in
// that range and released for a moment, as when a test stops a server and
// starts it again on the same port, is soon the local end of some other
// test's connection, and the restart fails with "address already in use".
// Below the range only another Ports caller can take it.
func Ports(n int) ([]int, error) {
	lo, hi := below()
	ports := make([]int, 0, n)
	// All n listeners stay open until every port is chosen, so that no
	// port is chosen twice.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0"
		if hi > lo && tries < 100*n {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr == "127.0.0.1:0" {
				return nil, fmt.Errorf("find a free port: %w", err)
			}
			continue // taken; draw again
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// below returns the ports [lo, hi) to draw from: from 10000 (clear of
// well-known and registered services' usual ports) up to the start of the
// ephemeral range. An empty range means: let the kernel pick.
func below() (lo, hi int) {
	const floor = 10000
	hi = EphemeralStart()
	if hi-floor < 1000 {
		return 0, 0
	}
	return floor, hi
}

// EphemeralStart returns the first port of the kernel's ephemeral range
// (Linux's default when the kernel does not say).
func EphemeralStart() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				return v
			}
		}
	}
	return 32768
}
