// Package kubetest runs the real Kubernetes peers that eventpipe's tests
// compare against and read from: Debian's etcd, kube-apiserver v1.37 and
// kubectl v1.37 (docs/architecture.md#the-real-peers-in-tests).
//
// kube-apiserver and kubectl are built from the module proxy into
// <repo>/.tools/bin by scripts/build-test-tools.sh; etcd comes from Debian's
// etcd-server package (scripts/install-deps.sh). When one of them is missing,
// tests skip and say which command provides it; with CI=true they fail
// instead, so that a missing dependency never silently skips in CI.
//
// StartCluster gives a test its own etcd and kube-apiserver on free loopback
// ports, in a temporary directory, stopped at the test's cleanup:
//
//	c := kubetest.StartCluster(t, kubetest.Options{})
//	cs := kubernetes.NewForConfigOrDie(c.Config)
//	out, _, err := kubetest.Kubectl(t, c.Kubeconfig, "get", "events", "-A")
//
// Everything listens on 127.0.0.1 only.
package kubetest
