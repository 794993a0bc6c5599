// Package clientgo checks eventpipe against client-go's own machinery: the
// core/v1 and events.k8s.io/v1 EventRecorders compared with kube-apiserver,
// and informers across restarts and a forced 410 (issue 3, acceptance 3).
package clientgo
