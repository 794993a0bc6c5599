package apiserverbench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/eventpipe/eventpipe/bench/internal/procstat"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
)

var apiServerMode = flag.String("apibench.eventpipe-apiserver", "inprocess",
	"where eventpipe's API server runs: inprocess (in this process with every other role, as eventpipe dev does) "+
		"or process (`eventpipe apiserver` as a child process of its own, the other roles in this process; "+
		"its memory is then reported as apiserver-rss-MiB and apiserver-peak-rss-MiB)")

var apiServerEnv = flag.String("apibench.apiserver-env", "",
	"with -apibench.eventpipe-apiserver=process: environment variables for the API server process alone, comma-separated (e.g. GOGC=100,GOMEMLIMIT=256MiB)")

var apiServerHeap = flag.String("apibench.apiserver-heapprofile", "",
	"with -apibench.eventpipe-apiserver=process: write the API server's heap profile at the end of each run to FILE.<run>.prof (read it with go tool pprof and a build of cmd/eventpipe)")

// startAPIServerProcess runs `eventpipe apiserver` on env's JetStream and
// ClickHouse, with the dev stack's tokens (dataDir/apiserver/tokens.csv), and
// returns a config that reaches it as the dev stack's platform admin, and
// its process ID. The dev stack's own API server stays up, idle.
func startAPIServerProcess(b *testing.B, env *devenv.Env, dataDir string, admin *rest.Config) (*rest.Config, int) {
	b.Helper()
	port := devtest.FreePort(b)
	dir := b.TempDir()
	logf, err := os.Create(filepath.Join(dir, "apiserver.log"))
	if err != nil {
		b.Fatal(err)
	}
	bin, err := devtest.BuildEventpipe(dir)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "apiserver",
		"--nats.url", env.NATSURL,
		"--clickhouse.addr", env.ClickHouseAddr, "--clickhouse.database", env.Database,
		"--token-auth-file", filepath.Join(dataDir, "apiserver", "tokens.csv"),
		"--cert-dir", filepath.Join(dir, "certs"),
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port),
		"--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if *apiServerEnv != "" {
		cmd.Env = append(os.Environ(), strings.Split(*apiServerEnv, ",")...)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	rc := rest.CopyConfig(admin)
	rc.Host = fmt.Sprintf("https://127.0.0.1:%d", port)
	rc.TLSClientConfig = rest.TLSClientConfig{Insecure: true} // its own self-signed certificate
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "apiserver.log"))
			b.Fatalf("eventpipe apiserver exited while starting: %v\n%s", err, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil {
			return rc, cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			b.Fatalf("eventpipe apiserver not ready in 90s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reportMemory reports the resident memory of eventpipe's API server when
// it runs as a process of its own: now (apiserver-rss-MiB) and the most it
// ever had (apiserver-peak-rss-MiB, the kernel's high-water mark).
func (s *server) reportMemory(b *testing.B) {
	if s.apiPID == 0 {
		return
	}
	if *apiServerHeap != "" {
		cs := kubernetes.NewForConfigOrDie(s.config)
		raw, err := cs.Discovery().RESTClient().Get().AbsPath("/debug/pprof/heap").DoRaw(context.Background())
		if err != nil {
			b.Fatalf("heap profile of the API server: %v", err)
		}
		p := *apiServerHeap + "." + unsafeName.ReplaceAllString(b.Name(), "_") + ".prof"
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	rss, peak, err := procstat.Memory(s.apiPID)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rss, "apiserver-rss-MiB")
	b.ReportMetric(peak, "apiserver-peak-rss-MiB")
}
