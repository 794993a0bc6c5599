package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/testenv"
)

// Module is the module path of the repository whose .tools/bin holds the
// built peers.
const Module = "github.com/eventpipe/eventpipe"

// BuildCommand builds kube-apiserver and kubectl into .tools/bin; run it from
// the repository root.
const BuildCommand = "scripts/build-test-tools.sh"

// EtcdInstallCommand installs etcd (Debian's etcd-server package).
const EtcdInstallCommand = "scripts/install-deps.sh (or: apt-get install -y etcd-server)"

// KubectlTimeout bounds one Kubectl call.
const KubectlTimeout = 2 * time.Minute

// Binaries returns the paths of kube-apiserver and kubectl in the
// repository's .tools/bin and of etcd on PATH. When any is missing it skips
// the test, naming the command that provides it, or fails it when CI=true.
func Binaries(tb testing.TB) (kubeAPIServer, kubectl, etcd string) {
	tb.Helper()
	kubeAPIServer, kubectl, etcd, err := findBinaries()
	if err != nil {
		missing(tb, err)
	}
	return kubeAPIServer, kubectl, etcd
}

// missing skips or, with CI=true, fails the test for a missing peer.
func missing(tb testing.TB, err error) {
	tb.Helper()
	testenv.Missing(tb, fmt.Errorf("a test peer is missing: %w", err))
}

func findBinaries() (kubeAPIServer, kubectl, etcd string, err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", "", "", err
	}
	bin := filepath.Join(root, ".tools", "bin")
	var errs []error
	kubeAPIServer = filepath.Join(bin, "kube-apiserver")
	kubectl = filepath.Join(bin, "kubectl")
	for _, p := range []string{kubeAPIServer, kubectl} {
		if err := isExecutable(p); err != nil {
			errs = append(errs, fmt.Errorf("%w; build it with %s (in %s)", err, BuildCommand, root))
		}
	}
	etcd, lookErr := exec.LookPath("etcd")
	if lookErr != nil {
		errs = append(errs, fmt.Errorf("etcd is not on PATH; install it with %s", EtcdInstallCommand))
	}
	return kubeAPIServer, kubectl, etcd, errors.Join(errs...)
}

func isExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s does not exist", path)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// RepoRoot returns the directory holding the go.mod of module
// github.com/eventpipe/eventpipe, found by walking up from the working
// directory (a test's working directory is its package's directory).
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if modulePath(filepath.Join(dir, "go.mod")) == Module {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("find repository root: no go.mod of module %s in %s or above", Module, wd)
		}
	}
}

// modulePath returns the module path declared in the go.mod at path, or ""
// when there is none.
func modulePath(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// Kubectl runs the built kubectl with --kubeconfig=kubeconfig and args, and
// returns what it printed. err is non-nil when kubectl could not run or
// exited non-zero (an *exec.ExitError then; stderr has kubectl's message).
// A call is killed after KubectlTimeout. The test skips (fails with CI=true)
// when kubectl is not built.
func Kubectl(tb testing.TB, kubeconfig string, args ...string) (stdout, stderr string, err error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), KubectlTimeout)
	defer cancel()
	cmd := kubectlCommand(ctx, tb, kubeconfig, args...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("kubectl %s: killed after %s: %w", strings.Join(args, " "), KubectlTimeout, ctx.Err())
	}
	return outBuf.String(), errBuf.String(), err
}

// KubectlLines starts kubectl with args, for commands that keep printing,
// such as `kubectl get -w`, and sends each line it prints to stdout on the
// returned channel, which is closed when kubectl exits. Cancelling ctx
// kills kubectl; the test waits at cleanup until it has exited, so the
// caller must cancel ctx before the test ends.
func KubectlLines(ctx context.Context, tb testing.TB, kubeconfig string, args ...string) <-chan string {
	tb.Helper()
	cmd := kubectlCommand(ctx, tb, kubeconfig, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	lines := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done(): // nobody reads any more
			}
		}
		close(lines)
		// Wait only after reading stops: it closes the pipe. Its error is
		// the kill the caller asked for, or a failure the lines showed.
		_ = cmd.Wait()
	}()
	tb.Cleanup(func() { <-done })
	return lines
}

func kubectlCommand(ctx context.Context, tb testing.TB, kubeconfig string, args ...string) *exec.Cmd {
	tb.Helper()
	_, kubectl, _, err := findBinaries()
	if err != nil && isExecutable(kubectl) != nil {
		missing(tb, err)
	}
	// A fresh cache per call: a server restarted on the same port with other
	// APIs must never be answered from a stale discovery cache.
	full := append([]string{"--kubeconfig=" + kubeconfig, "--cache-dir=" + tb.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, kubectl, full...)
	cmd.Env = kubectlEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// kubectlEnv is the test process's environment without what would make
// kubectl behave differently from one developer's machine to another's:
// KUBECONFIG, kubectl's preference file (kuberc) and KUBECTL_* switches.
func kubectlEnv() []string {
	return append(environ("KUBECONFIG", "KUBERC", "KUBECTL_"), "KUBERC=off")
}
