// Package testenv decides what a test does when the machine lacks something
// it needs (clickhouse-server, libchdb, kube-apiserver, etcd): on a
// developer's machine the test is skipped, naming what is missing; with
// CI=true the test fails, because there a missing dependency means the
// suite did not run, and a skip would hide that.
package testenv

import (
	"os"
	"testing"
)

// Missing ends tb because of err, a missing dependency: it fails tb when
// CI=true and skips it otherwise.
func Missing(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true and %v", err)
	}
	tb.Skip(err)
}
