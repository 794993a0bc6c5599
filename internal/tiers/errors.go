package tiers

import (
	"fmt"
	"math"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Cause types the errors carry in status.details.causes, so clients can tell
// the limits apart without parsing messages.
const (
	CauseStorageQuota metav1.CauseType = "StorageQuotaExceeded"
	CauseRateLimit    metav1.CauseType = "RateLimitExceeded"
)

// QuotaExceeded is the 403 Forbidden for a write that would take l.Scope past
// its storage quota. used is what the tenant stores now, incoming what the
// write adds. gr and name are the object being written (name may be empty).
func QuotaExceeded(gr schema.GroupResource, name string, l Limits, used, incoming int64) *apierrors.StatusError {
	msg := fmt.Sprintf("storage quota of tier %s exceeded for %s: used %s of %s, this write needs %s more; delete old events or ask for a larger tier",
		l.Tier, l.Scope, humanBytes(used), humanBytes(l.StorageQuota), humanBytes(incoming))
	err := apierrors.NewForbidden(gr, name, fmt.Errorf("%s", msg))
	err.ErrStatus.Message = msg // the tenant's problem, not the object's: say it plainly
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type:    CauseStorageQuota,
		Message: fmt.Sprintf("tier %s, used %d bytes, limit %d bytes, write %d bytes", l.Tier, used, l.StorageQuota, incoming),
	})
	return err
}

// TooManyRequests is the 429 for a write above l.Scope's hard rate limit.
// The response carries Retry-After (whole seconds, at least 1), which the
// API server copies from details.retryAfterSeconds.
func TooManyRequests(l Limits, retryAfter time.Duration) *apierrors.StatusError {
	secs := int(math.Ceil(retryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	msg := fmt.Sprintf("rate limit of tier %s exceeded for %s: more than %d events in this minute (hard limit %s); retry after %ds, spread writes out, or ask for a larger tier",
		l.Tier, l.Scope, l.RateHard, FormatRate(l.RateHard), secs)
	err := apierrors.NewTooManyRequests(msg, secs)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type: CauseRateLimit, Message: fmt.Sprintf("tier %s, hard limit %d events per minute", l.Tier, l.RateHard),
	})
	return err
}

// RateWarning is the text of the Warning header for a write above the soft
// rate limit; count is the write's number within the minute.
func RateWarning(l Limits, count int64) string {
	hard := "no hard limit"
	if l.RateHard != Unlimited {
		hard = fmt.Sprintf("writes above the hard limit of %s are refused", FormatRate(l.RateHard))
	}
	return fmt.Sprintf("%s (tier %s) wrote %d events this minute, above the soft rate limit of %s; %s until the minute ends",
		l.Scope, l.Tier, count, FormatRate(l.RateSoft), hard)
}

// QueryStartField is the field the query window error names.
var QueryStartField = field.NewPath("spec", "startTime")

// CheckQueryStart returns the 422 Invalid for a query of kind gk named name
// (EventQuery, EventFacetQuery) that starts before l's query window allows at
// now, or nil. start is the query's resolved start time.
func CheckQueryStart(gk schema.GroupKind, name string, l Limits, start, now time.Time) *apierrors.StatusError {
	earliest, limited := l.EarliestStart(now)
	if !limited || !start.Before(earliest) {
		return nil
	}
	fe := field.Invalid(QueryStartField, start.UTC().Format(time.RFC3339),
		fmt.Sprintf("tier %s allows queries over the last %s (from %s); use a later startTime or ask for a larger tier",
			l.Tier, FormatDuration(l.QueryWindow), earliest.UTC().Format(time.RFC3339)))
	return apierrors.NewInvalid(gk, name, field.ErrorList{fe})
}

// humanBytes writes n bytes for people: "1.00 GiB (1073741824 bytes)".
func humanBytes(n int64) string {
	if n == Unlimited {
		return "unlimited"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.2f %s (%d bytes)", v, units[i], n)
}
