package writerha

import (
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

// writerProc is one `eventpipe writer` process.
type writerProc struct {
	*devtest.Role
	t *testing.T
}

func startWriter(t *testing.T, name string, args ...string) *writerProc {
	t.Helper()
	return &writerProc{devtest.StartRole(t, name, append([]string{"writer", "--writer.identity", name}, args...)...), t}
}

// metric reads one unlabelled sample; ok is false when the endpoint or the
// sample is not there.
func (p *writerProc) metric(name string) (v float64, ok bool) {
	v, err := p.Metric(name)
	return v, err == nil
}

// waitFor polls cond until it holds, failing the test after within or
// when the process exits.
func (p *writerProc) waitFor(what string, within time.Duration, cond func() bool) {
	p.t.Helper()
	p.WaitFor(what, within, func() (bool, string) { return cond(), "" })
}

func (p *writerProc) isLeader() bool {
	v, ok := p.metric("eventpipe_writer_leader")
	return ok && v == 1
}

func (p *writerProc) isStandby() bool {
	v, ok := p.metric("eventpipe_writer_leader")
	return ok && v == 0
}
