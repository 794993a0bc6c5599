// Package timerange parses the time bounds of history queries: absolute
// RFC 3339 times with any offset, or times relative to now ("now",
// "now-30m", "now-7d"), and resolves them against one clock reading so that
// both bounds of a window use the same "now".
package timerange

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Examples is the text error messages use to say what is allowed.
const Examples = `an RFC 3339 time such as "2026-02-11T00:00:00Z" or "2026-02-11T09:30:00+01:00", ` +
	`or a time relative to now: "now", "now-30m", "now-2h", "now-7d", "now-1w" (units s, m, h, d, w)`

// maxRelative bounds relative offsets so that arithmetic cannot overflow a
// time.Duration; no tier keeps anywhere near 10 years.
const maxRelative = 10 * 365 * 24 * time.Hour

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("not a time")

// Parse resolves s against now. It accepts RFC 3339 (fractional seconds
// allowed) and "now" optionally followed by "-" and a duration (see
// ParseDuration). Leading and trailing spaces are ignored.
func Parse(s string, now time.Time) (time.Time, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return time.Time{}, fmt.Errorf("%w: empty", ErrSyntax)
	}
	if rest, ok := strings.CutPrefix(t, "now"); ok {
		if rest == "" {
			return now, nil
		}
		off, ok := strings.CutPrefix(rest, "-")
		if !ok {
			return time.Time{}, fmt.Errorf("%w: %q: after \"now\" only \"-<duration>\" may follow", ErrSyntax, s)
		}
		d, err := ParseDuration(off)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %q: %v", ErrSyntax, s, err)
		}
		return now.Add(-d), nil
	}
	ts, err := time.Parse(time.RFC3339Nano, t)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is neither RFC 3339 nor relative to now", ErrSyntax, s)
	}
	return ts, nil
}

// units are the duration suffixes, longest first is not needed: each is one
// letter.
var units = map[byte]time.Duration{
	's': time.Second,
	'm': time.Minute,
	'h': time.Hour,
	'd': 24 * time.Hour,
	'w': 7 * 24 * time.Hour,
}

// ParseDuration reads a positive whole number followed by one unit: s, m, h,
// d (24h) or w (7d), e.g. "30m", "7d". Compound forms ("1h30m") and
// fractions are refused to keep the language small; at most 10 years.
func ParseDuration(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("duration %q: want a number and a unit s, m, h, d or w, e.g. 30m", s)
	}
	unit, ok := units[s[len(s)-1]]
	if !ok {
		return 0, fmt.Errorf("duration %q: unknown unit %q; use s, m, h, d or w", s, s[len(s)-1:])
	}
	num := s[:len(s)-1]
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return 0, fmt.Errorf("duration %q: want a whole number before the unit", s)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > int64(maxRelative/unit) {
		return 0, fmt.Errorf("duration %q: want a number from 1 up to 10 years", s)
	}
	return time.Duration(n) * unit, nil
}

// FormatDuration writes d in the largest unit of ParseDuration that divides
// it exactly ("1h", "7d", "90s"); 0 is "0s".
func FormatDuration(d time.Duration) string {
	for _, u := range []struct {
		c byte
		d time.Duration
	}{{'w', 7 * 24 * time.Hour}, {'d', 24 * time.Hour}, {'h', time.Hour}, {'m', time.Minute}} {
		if d >= u.d && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + string(u.c)
		}
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}
