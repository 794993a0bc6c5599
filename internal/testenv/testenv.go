// Package testenv holds what tests share about their environment: what a
// test does when the machine lacks something it needs (clickhouse-server,
// libchdb, kube-apiserver, etcd): on a developer's machine the test is
// skipped, naming what is missing; with CI=true the test fails, because
// there a missing dependency means the suite did not run, and a skip would
// hide that. And how a test waits for something to happen: by polling for
// it, never by sleeping a fixed time.
package testenv

import (
	"os"
	"testing"
	"time"
)

// WaitFor polls cond every 50 ms until it holds, and fails tb when timeout
// passes first, with what names the condition and what cond said last. cond
// may itself fail tb (for example when a process it waits on has exited).
func WaitFor(tb testing.TB, what string, timeout time.Duration, cond func() (ok bool, why string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s: %s", what, timeout, why)
		}
		<-tick.C
	}
}

// Missing ends tb because of err, a missing dependency: it fails tb when
// CI=true and skips it otherwise.
func Missing(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true and %v", err)
	}
	tb.Skip(err)
}
