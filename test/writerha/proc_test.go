package writerha

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

// writerProc is one `eventpipe writer` process.
type writerProc struct {
	t       *testing.T
	name    string
	args    []string
	cmd     *exec.Cmd
	done    chan struct{}
	log     string
	metrics string
}

func startWriter(t *testing.T, name string, args ...string) *writerProc {
	t.Helper()
	p := &writerProc{t: t, name: name, args: args, log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			lines := strings.Split(string(b), "\n")
			t.Logf("the end of %s's log:\n%s", name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	p.start()
	return p
}

func (p *writerProc) start() {
	p.t.Helper()
	port := devtest.FreePort(p.t)
	p.metrics = "http://127.0.0.1:" + strconv.Itoa(port)
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	args := append([]string{"writer", "--metrics.addr", "127.0.0.1:" + strconv.Itoa(port), "--log-level", "info",
		"--writer.identity", p.name}, p.args...)
	p.cmd = exec.Command(eventpipeBinary(p.t), args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
}

// kill sends SIGKILL (kill -9) and waits for the process to end.
func (p *writerProc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once continued
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *writerProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

func (p *writerProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// metric reads one unlabelled sample from the process's /metrics; ok is
// false when the endpoint or the sample is not there.
func (p *writerProc) metric(name string) (v float64, ok bool) {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(p.metrics + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return 0, false
}

// waitFor polls cond every 50ms until it holds, failing the test after
// within or when the process exits.
func (p *writerProc) waitFor(what string, within time.Duration, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if p.exited() {
			p.t.Fatalf("writer %s exited before %s; see %s", p.name, what, p.log)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("writer %s: not %s after %s", p.name, what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *writerProc) isLeader() bool {
	v, ok := p.metric("eventpipe_writer_leader")
	return ok && v == 1
}

func (p *writerProc) isStandby() bool {
	v, ok := p.metric("eventpipe_writer_leader")
	return ok && v == 0
}

func (p *writerProc) logContains(s string) bool {
	b, err := os.ReadFile(p.log)
	return err == nil && strings.Contains(string(b), s)
}
