package event

import (
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/eventpipe/eventpipe/internal/kubeevents/conversion"
	"github.com/eventpipe/eventpipe/internal/kubeevents/table"
)

// NewTableConvertor prints Events of either group the way kube-apiserver
// does for `kubectl get events`.
func NewTableConvertor() rest.TableConvertor {
	return table.NewTableConvertor(conversion.FromEventsV1)
}
