// Package retry holds what the loops that retry a failed step share: the
// wait between attempts, cut short when the work is cancelled.
package retry

import (
	"context"
	"time"
)

// Sleep waits d, or less when ctx ends first. It reports whether the whole
// wait passed, so that a loop returns instead of retrying once ctx is done.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
