package audit_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
)

// receiver runs `eventpipe apiserver` as a process of its own on dev
// mode's JetStream and ClickHouse, on a fixed port and certificate, so it
// can be killed and started again where kube-apiserver sends its batches.
type receiver struct {
	bin, certDir, tokens, logPath string
	env                           *devenv.Env
	port                          int
	cmd                           *exec.Cmd
	exited                        chan error
}

func (r *receiver) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	r.cmd = exec.Command(r.bin, "apiserver", "--nats.url", r.env.NATSURL,
		"--clickhouse.addr", r.env.ClickHouseAddr, "--clickhouse.database", r.env.Database,
		"--token-auth-file", r.tokens, "--cert-dir", r.certDir,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(r.port), "--log-level", "warn")
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	require.NoError(t, r.cmd.Start())
	exited := make(chan error, 1)
	r.exited = exited
	cmd := r.cmd
	go func() { exited <- cmd.Wait(); logf.Close() }()
	waitFor(t, "eventpipe apiserver listens", 90*time.Second, func() (bool, string) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(r.logPath)
			t.Fatalf("eventpipe apiserver exited while starting: %v\n%s", err, b)
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.port), time.Second)
		if err != nil {
			return false, err.Error()
		}
		_ = c.Close()
		return true, ""
	})
}

// kill ends the receiver with SIGKILL, as a crash would.
func (r *receiver) kill() {
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// recordingProxy sits between kube-apiserver's audit webhook and eventpipe
// and remembers every record of every batch eventpipe answered 2xx to:
// what kube-apiserver was told is stored.
type recordingProxy struct {
	upstream string
	client   *http.Client
	mu       sync.Mutex
	acked    map[string]bool // auditID/stage
	ok, bad  atomic.Int64
	creates  int // the load's creates found stored, for the log
}

func (p *recordingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		p.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 {
		var list auditv1.EventList
		if err := json.Unmarshal(body, &list); err == nil {
			p.mu.Lock()
			for _, ev := range list.Items {
				p.acked[string(ev.AuditID)+"/"+string(ev.Stage)] = true
			}
			p.mu.Unlock()
		}
		p.ok.Add(1)
	} else {
		p.bad.Add(1)
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// TestReceiverKilledUnderLoad kills -9 the API server that receives
// kube-apiserver's audit batches while kube-apiserver serves 200 requests
// a second, and starts it again: every record of every batch eventpipe
// acknowledged is stored, and none twice, also of the batches
// kube-apiserver sent again after the outage.
func TestReceiverKilledUnderLoad(t *testing.T) {
	o := devtest.Options(t)
	env := devtest.Run(t, o)
	dir := t.TempDir()
	bin, err := devtest.BuildEventpipe(dir)
	require.NoError(t, err)
	r := &receiver{bin: bin, certDir: filepath.Join(dir, "certs"), tokens: filepath.Join(o.DataDir, "apiserver", "tokens.csv"),
		logPath: filepath.Join(dir, "apiserver.log"), env: env, port: devtest.FreePort(t)}
	r.start(t)
	t.Cleanup(r.kill)

	// The proxy trusts the receiver's self-signed certificate, and
	// kube-apiserver posts to the proxy with the dev stack's audit
	// identity (scope Project/cluster).
	ca, err := os.ReadFile(filepath.Join(r.certDir, "apiserver.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	proxy := &recordingProxy{upstream: "https://127.0.0.1:" + strconv.Itoa(r.port), acked: map[string]bool{},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
	// kube-apiserver sends its webhook credentials over TLS only.
	srv := httptest.NewUnstartedServer(proxy)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	token := auditToken(t, env.AuditWebhookConfig)
	webhookConfig := filepath.Join(dir, "audit-webhook.kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["eventpipe"] = &clientcmdapi.Cluster{Server: srv.URL + "/ingest/v1/audit",
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})}
	cfg.AuthInfos["kube-apiserver"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["eventpipe"] = &clientcmdapi.Context{Cluster: "eventpipe", AuthInfo: "kube-apiserver"}
	cfg.CurrentContext = "eventpipe"
	require.NoError(t, clientcmd.WriteToFile(*cfg, webhookConfig))

	c := kubetest.StartCluster(t, kubetest.Options{ExtraArgs: auditArgs(t, webhookConfig)})
	rc := rest.CopyConfig(c.Config)
	rc.QPS, rc.Burst = -1, 0
	cs, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)

	// 200 creates a second for 12 s; the receiver is killed at 3 s and
	// started again a second later.
	const rate, seconds = 200, 12
	ctx := context.Background()
	var created atomic.Int64
	load := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for i := range rate * seconds {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}}, metav1.CreateOptions{})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				created.Add(1)
			}()
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			load <- err
			return
		}
		load <- nil
	}()
	waitFor(t, "the load reaches 3 s", 30*time.Second, func() (bool, string) {
		return created.Load() >= 3*rate, fmt.Sprint(created.Load())
	})
	r.kill()
	t.Logf("killed the receiver after %d creates; %d batches acknowledged", created.Load(), proxy.ok.Load())
	// The outage lasts until kube-apiserver has had a batch refused, so
	// that its retries are what the rest of the test checks.
	waitFor(t, "kube-apiserver's webhook meets the outage", time.Minute, func() (bool, string) {
		return proxy.bad.Load() > 0, fmt.Sprintf("%d batches refused or failed", proxy.bad.Load())
	})
	r.start(t)
	require.NoError(t, <-load)

	// kube-apiserver flushes within --audit-webhook-batch-max-wait and
	// retries what failed; everything acknowledged must then be stored.
	var stored map[string]int
	waitFor(t, "every acknowledged audit record is queryable", 2*time.Minute, func() (bool, string) {
		stored = queryAudit(t, env.Kubeconfig)
		proxy.mu.Lock()
		defer proxy.mu.Unlock()
		missing := 0
		for id := range proxy.acked {
			if stored[id] == 0 {
				missing++
			}
		}
		creates := 0
		for id := range stored {
			if strings.HasSuffix(id, "/create/configmaps") {
				creates++
			}
		}
		proxy.creates = creates
		return missing == 0 && creates >= rate*seconds, fmt.Sprintf("%d of %d acknowledged records missing; %d of %d creates stored", missing, len(proxy.acked), creates, rate*seconds)
	})
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	records := 0
	for id, n := range stored {
		require.Equal(t, 1, n, "record %s stored %d times", id, n)
		if strings.Count(id, "/") == 1 {
			records++
		}
	}
	t.Logf("%d batches acknowledged, %d refused or failed during the outage; %d records acknowledged, %d stored (%d of them the load's creates), each once",
		proxy.ok.Load(), proxy.bad.Load(), len(proxy.acked), records, proxy.creates)
}

// auditToken reads the bearer token of dev mode's audit webhook kubeconfig.
func auditToken(t *testing.T, path string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	require.NoError(t, err)
	for _, a := range cfg.AuthInfos {
		return a.Token
	}
	t.Fatalf("%s has no user", path)
	return ""
}

// queryAudit reads every audit record of the last hour through
// AuditLogQuery as the platform admin, page by page, and counts each under
// auditID/stage, and again under auditID/stage/verb/resource for the
// test's tally of its own creates.
func queryAudit(t *testing.T, kubeconfig string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ev := range auditRecords(t, kubeconfig, map[string]any{"startTime": "now-1h", "endTime": "now", "limit": 1000}) {
		id := string(ev.AuditID) + "/" + string(ev.Stage)
		out[id]++
		if ev.ObjectRef != nil {
			out[id+"/"+ev.Verb+"/"+ev.ObjectRef.Resource]++
		}
	}
	return out
}

// auditRecords runs an AuditLogQuery with spec as kubeconfig's user and
// returns the results of every page.
func auditRecords(t *testing.T, kubeconfig string, spec map[string]any) []auditv1.Event {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)
	var out []auditv1.Event
	for {
		q := map[string]any{"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "AuditLogQuery", "spec": spec}
		body, err := json.Marshal(q)
		require.NoError(t, err)
		raw, err := cs.RESTClient().Post().AbsPath("/apis/activity.miloapis.com/v1alpha1/auditlogqueries").Body(body).
			SetHeader("Content-Type", "application/json").DoRaw(context.Background())
		require.NoError(t, err, string(raw))
		var res struct {
			Status struct {
				Results  []auditv1.Event
				Continue string
			}
		}
		require.NoError(t, json.Unmarshal(raw, &res))
		out = append(out, res.Status.Results...)
		if res.Status.Continue == "" {
			return out
		}
		spec["continue"] = res.Status.Continue
	}
}
