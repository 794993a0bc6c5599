// Package chcluster_test checks eventpipe's ClickHouse cluster mode end to
// end, with the writer between JetStream and a 2 shards × 2 replicas
// cluster, through faults of the cluster's servers.
package chcluster_test

import (
	"testing"

	"github.com/eventpipe/eventpipe/internal/chserver/chtest"
)

func TestMain(m *testing.M) {
	chtest.VerifyTestMain(m)
}
