package devtest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/testenv"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// Binary builds ./cmd/eventpipe once per test binary, for roles that must
// run as processes of their own (to be killed with SIGKILL or paused with
// SIGSTOP). A package that calls it removes the build with RemoveBinary
// from its TestMain.
func Binary(tb testing.TB) string {
	tb.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "eventpipe-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath, binaryErr = BuildEventpipe(dir)
	})
	if binaryErr != nil {
		tb.Fatal(binaryErr)
	}
	return binaryPath
}

// RemoveBinary deletes what Binary built, if anything.
func RemoveBinary() {
	if binaryPath != "" {
		_ = os.RemoveAll(filepath.Dir(binaryPath))
	}
}

// Role is one eventpipe role (`eventpipe writer`, `eventpipe export`, …)
// running as a process of the test: in its own process group, killed with
// the test binary, its output appended to one log file across restarts,
// its metrics server on a free port.
type Role struct {
	t    *testing.T
	Name string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	// Log is the log file; logFrom is where the current process's lines
	// start in it.
	Log     string
	logFrom int64
	// MetricsURL is http://127.0.0.1:PORT of the current process.
	MetricsURL string
}

// StartRole starts `eventpipe ARGS… --metrics.addr … --log-level info`;
// args begins with the subcommand. The process is killed at cleanup, and
// the end of its log is printed when the test failed.
func StartRole(t *testing.T, name string, args ...string) *Role {
	t.Helper()
	p := &Role{t: t, Name: name, args: args, Log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.Log)
			lines := strings.Split(string(b), "\n")
			t.Logf("the end of %s's log:\n%s", name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	p.Start()
	return p
}

// Start starts the process again (after Kill), on a new metrics port.
func (p *Role) Start() {
	p.t.Helper()
	port := FreePort(p.t)
	p.MetricsURL = "http://127.0.0.1:" + strconv.Itoa(port)
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		p.t.Fatal(err)
	}
	p.logFrom = fi.Size()
	args := append(append([]string{}, p.args...), "--metrics.addr", "127.0.0.1:"+strconv.Itoa(port), "--log-level", "info")
	p.cmd = exec.Command(Binary(p.t), args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
}

// Kill sends SIGKILL (kill -9), also to a stopped process, and waits for
// it to end.
func (p *Role) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once continued
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process.
func (p *Role) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Exited reports whether the current process has ended.
func (p *Role) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Get fetches a path of the process's metrics server.
func (p *Role) Get(path string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(p.MetricsURL + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// Metric returns the value of one metric line (the name with its labels,
// exactly as exposed); an error when the endpoint does not answer or the
// series is absent.
func (p *Role) Metric(series string) (float64, error) {
	code, body, err := p.Get("/metrics")
	if err != nil {
		return 0, fmt.Errorf("%s: /metrics: %w", p.Name, err)
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("%s: /metrics answered %d", p.Name, code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: /metrics: %w", p.Name, err)
	}
	return 0, fmt.Errorf("%s: no series %s in /metrics", p.Name, series)
}

// Logged reports whether the current process has written a log line
// containing s.
func (p *Role) Logged(s string) bool {
	b, err := os.ReadFile(p.Log)
	if err != nil || int64(len(b)) < p.logFrom {
		return false
	}
	return strings.Contains(string(b[p.logFrom:]), s)
}

// WaitFor polls cond until it holds (testenv.WaitFor), and fails the test
// when the process exits first or within passes; what names the condition
// in the failure, why is what cond last said about it.
func (p *Role) WaitFor(what string, within time.Duration, cond func() (ok bool, why string)) {
	p.t.Helper()
	testenv.WaitFor(p.t, p.Name+" "+what, within, func() (bool, string) {
		if p.Exited() {
			p.t.Fatalf("%s exited before %s; see its log %s", p.Name, what, p.Log)
		}
		return cond()
	})
}
