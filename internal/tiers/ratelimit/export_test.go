package ratelimit

import "github.com/prometheus/client_golang/prometheus"

// DecisionsForTest exposes one decision counter.
func (l *Limiter) DecisionsForTest(tier, verdict string) prometheus.Counter {
	return l.m.decisions.WithLabelValues(tier, verdict)
}
