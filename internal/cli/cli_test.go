package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestBadStartReportsEveryProblemOnce(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"writer flags", []string{"writer", "--writer.batch-size", "0", "--clickhouse.addr", "nope", "--nats.url", "", "--stream.replicas", "2"},
			[]string{"--writer.batch-size must be between 1 and 1000000, got 0", `--clickhouse.addr "nope" must be host:port`,
				"--nats.url must not be empty", "--stream.replicas must be 1, 3 or 5, got 2"}},
		{"dev flags", []string{"dev", "--demo.rate", "-1", "--stream.retention", "1s"},
			[]string{"--demo.rate must be above 0", "--stream.retention must be at least 1m, got 1s"}},
		{"export flags", []string{"export", "--exporter.scope-type", "Tenant", "--exporter.kube-qps", "0"},
			[]string{"--exporter.cluster-name is required", "--exporter.scope-type/--exporter.scope-name", "--exporter.kube-qps must be positive"}},
		{"runtime flags", []string{"version", "--runtime.gc-percent", "10", "--runtime.memory-limit", "lots"},
			[]string{"--runtime.gc-percent must be at least 25, got 10", `--runtime.memory-limit must be auto, 0 or a size`}},
		{"apiserver tier flags", []string{"apiserver", "--tiers.replicas", "0", "--tiers.quota-refresh", "100ms"},
			[]string{"--tiers.replicas must be at least 1, got 0", "--tiers.quota-refresh must be at least 1s (each refresh reads ClickHouse), got 100ms"}},
		{"unknown flag", []string{"writer", "--clickhouse.adr", "x:1"}, []string{"unknown flag: --clickhouse.adr"}},
		{"bad log level", []string{"migrate", "--log-level", "loud", "--clickhouse.addr", closedAddr(t)}, []string{`--log-level "loud": allowed: debug, info, warn, error`}},
		{"version output", []string{"version", "-o", "xml"}, []string{`--output "xml": allowed: json`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(t, c.args...)
			require.Equal(t, 1, code)
			require.Empty(t, stdout)
			require.True(t, strings.HasPrefix(stderr, "eventpipe: "), stderr)
			require.NotContains(t, stderr, "goroutine", "no stack traces")
			require.NotContains(t, stderr, "Usage:", "no usage dump on errors")
			for _, w := range c.want {
				require.Equal(t, 1, strings.Count(stderr, w), "want %q once in:\n%s", w, stderr)
			}
		})
	}
}

func TestUnreachableServersAreNamed(t *testing.T) {
	chAddr := closedAddr(t)
	code, _, stderr := run(t, "migrate", "--clickhouse.addr", chAddr)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "connect to ClickHouse at "+chAddr+" (--clickhouse.addr)")

	natsAddr := closedAddr(t)
	code, _, stderr = run(t, "writer", "--nats.url", "nats://"+natsAddr, "--metrics.addr", "127.0.0.1:0")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "connect to NATS at nats://"+natsAddr+" (--nats.url)")

	// NATS up, ClickHouse down: the writer names ClickHouse.
	ns := natstest.ForTest(t)
	code, _, stderr = run(t, "writer", "--nats.url", ns.ClientURL(), "--clickhouse.addr", chAddr, "--metrics.addr", "127.0.0.1:0")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "connect to ClickHouse at "+chAddr+" (--clickhouse.addr)")
	require.NotContains(t, stderr, "goroutine")
}

// Three stream replicas on a single JetStream server: every role that
// ensures the stream stops at start-up and says which flag and what to do.
func TestStreamReplicasOnASingleServer(t *testing.T) {
	ns := natstest.ForTest(t)
	for _, role := range [][]string{{"writer", "--clickhouse.addr", closedAddr(t)}, {"apiserver", "--clickhouse.addr", closedAddr(t)}} {
		args := append(role, "--nats.url", ns.ClientURL(), "--stream.replicas", "3", "--metrics.addr", "127.0.0.1:0")
		if role[0] == "apiserver" {
			args = args[:len(args)-2]
		}
		code, _, stderr := run(t, args...)
		require.Equal(t, 1, code, role[0])
		require.Contains(t, stderr, "--stream.replicas 3 needs a clustered JetStream", role[0])
		require.Contains(t, stderr, "use --stream.replicas 1, or point --nats.url at a cluster of at least 3 JetStream servers", role[0])
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := run(t, "version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(stdout, "eventpipe v"), stdout)
	code, stdout, _ = run(t, "version", "-o", "json")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, `"goVersion"`)
}
