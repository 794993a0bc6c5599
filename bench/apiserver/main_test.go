// Package apiserverbench measures eventpipe's Kubernetes Events API side by
// side with kube-apiserver 1.37 + etcd 3.4 on the same machine, with the
// same load client, in the same run (issue 3, DESIGN.md section 7):
// single-event creates/s (BenchmarkCreate), list latency for one namespace
// and for all namespaces at equal data (BenchmarkList), and create→watch
// delivery latency at 1,000 events/s with 100 watchers (BenchmarkWatch).
// bench/README.md has the commands and the recorded numbers.
package apiserverbench
