// Package generator simulates Kubernetes clusters that emit core/v1 Events the
// way a real cluster's kubelets, scheduler and controllers do.
//
// Each configured tenant is its own cluster: its own nodes, namespaces,
// workloads, pods and uids. Workloads roll out, scale, crash-loop, fail their
// probes and mounts; nodes go NotReady and reboot; CronJobs run. Every one of
// those stories produces the events a real cluster would record, with the
// field shapes client-go's recorders give them: legacy core/v1 events
// (firstTimestamp, lastTimestamp, count, source) from most components and
// events.k8s.io/v1-style events (eventTime, action, series) from the scheduler
// and kube-proxy. Repeating events are updated in place with growing counts,
// and old events expire with a delete, as in etcd.
//
// The output is the demo data of `eventpipe dev` and the load of benchmarks,
// so it is deterministic for a given seed and clock, and its memory is bounded
// so that it can run for days.
package generator
