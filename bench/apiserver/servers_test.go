package apiserverbench

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/bench/internal/load"
	"github.com/eventpipe/eventpipe/internal/devenv"
	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/kubetest"
)

// Names of the two servers, as they appear in sub-benchmark names
// (server=NAME), so that benchstat can put them side by side with
// -col /server.
const (
	kubeAPIServer = "kube-apiserver"
	eventpipe     = "eventpipe"
)

// server is one running API server under test.
type server struct {
	name string
	// config reaches the server as a member of system:masters.
	config *rest.Config
	// env is eventpipe's in-process stack; nil for kube-apiserver.
	env *devenv.Env
	// apiPID is the process of eventpipe's API server when it runs as one
	// of its own (-apibench.eventpipe-apiserver=process), else 0.
	apiPID int
}

// forEachServer runs f as sub-benchmark server=NAME on a fresh
// kube-apiserver + etcd, then on a fresh eventpipe, one after the other:
// never both at once, since they share the machine. Each is stopped before
// the next starts.
func forEachServer(b *testing.B, f func(b *testing.B, s *server)) {
	b.Run("server="+kubeAPIServer, func(b *testing.B) { f(b, startKubeAPIServer(b)) })
	b.Run("server="+eventpipe, func(b *testing.B) { f(b, startEventpipe(b)) })
}

// startKubeAPIServer starts kube-apiserver 1.37 and etcd 3.4 as kubetest
// does for every test: defaults (event TTL 1h, no watch cache for events,
// API Priority and Fairness on; the admin is in system:masters, which APF
// exempts), and creates the benchmark's namespaces, which kube-apiserver
// requires (NamespaceLifecycle).
func startKubeAPIServer(b *testing.B) *server {
	b.Helper()
	c := kubetest.StartCluster(b, kubetest.Options{})
	s := &server{name: kubeAPIServer, config: c.Config}
	cs := kubernetes.NewForConfigOrDie(s.config)
	for _, ns := range load.Namespaces() {
		_, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			b.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	return s
}

// startEventpipe runs every eventpipe role in this process as `eventpipe
// dev` does without the simulated cluster (test/e2e's startStack): the API
// server, an embedded JetStream and the writer, with clickhouse-server as a
// child process. The writer keeps its production defaults (batches of
// 10,000, BatchWait 500ms). eventpipe needs no namespaces created. opts
// adjust the options before it starts.
func startEventpipe(b *testing.B, opts ...func(*devenv.Options)) *server {
	b.Helper()
	o := devtest.Options(b)
	// The activity pipeline is not part of the Events API (kube-apiserver has
	// none), and in production it is a process of its own.
	o.Activities = false
	for _, f := range opts {
		f(&o)
	}
	env := devtest.Run(b, o)
	rc, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	s := &server{name: eventpipe, config: rc, env: env}
	switch *apiServerMode {
	case "inprocess":
	case "process":
		s.config, s.apiPID = startAPIServerProcess(b, env, o.DataDir, rc)
	default:
		b.Fatalf("-apibench.eventpipe-apiserver=%q: want inprocess or process", *apiServerMode)
	}
	return s
}
