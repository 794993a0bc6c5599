package timerange

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 2, 18, 12, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	for in, want := range map[string]time.Time{
		"now":                         now,
		" now ":                       now,
		"now-30m":                     now.Add(-30 * time.Minute),
		"now-2h":                      now.Add(-2 * time.Hour),
		"now-7d":                      now.Add(-7 * 24 * time.Hour),
		"now-1w":                      now.Add(-7 * 24 * time.Hour),
		"now-45s":                     now.Add(-45 * time.Second),
		"2026-02-11T00:00:00Z":        time.Date(2026, 2, 11, 0, 0, 0, 0, time.UTC),
		"2026-02-11T09:30:00+01:00":   time.Date(2026, 2, 11, 8, 30, 0, 0, time.UTC),
		"2026-02-11T00:00:00.5-08:00": time.Date(2026, 2, 11, 8, 0, 0, 5e8, time.UTC),
	} {
		t.Run(in, func(t *testing.T) {
			got, err := Parse(in, now)
			require.NoError(t, err)
			require.True(t, want.Equal(got), "got %s want %s", got, want)
		})
	}
	for in, msg := range map[string]string{
		"":                    "empty",
		"yesterday":           "neither RFC 3339",
		"now+1h":              `only "-<duration>"`,
		"now-":                "want a number and a unit",
		"now-1y":              "unknown unit",
		"now-1.5h":            "whole number",
		"now-0m":              "from 1 up to 10 years",
		"now-99999999999w":    "from 1 up to 10 years",
		"now--1h":             "whole number",
		"2026-02-11":          "neither RFC 3339",
		"2026-02-11 00:00:00": "neither RFC 3339",
	} {
		t.Run("bad "+in, func(t *testing.T) {
			_, err := Parse(in, now)
			require.ErrorIs(t, err, ErrSyntax)
			require.Contains(t, err.Error(), msg)
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 7 * 24 * time.Hour: "1w", 48 * time.Hour: "2d", 90 * time.Second: "90s", 5 * time.Minute: "5m", 0: "0s",
	} {
		require.Equal(t, want, FormatDuration(d))
		if d > 0 {
			back, err := ParseDuration(want)
			require.NoError(t, err)
			require.Equal(t, d, back)
		}
	}
}

// FuzzParse: any input either parses to a time or fails with ErrSyntax; it
// never panics, and relative times never land after now.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"now", "now-30m", "now-7d", "2026-02-11T00:00:00Z", "2026-02-11T09:30:00+01:00", "now-", "now-1x", "9999-12-31T23:59:59Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s, now)
		if err != nil {
			require.ErrorIs(t, err, ErrSyntax)
			return
		}
		if strings.HasPrefix(strings.TrimSpace(s), "now") {
			require.False(t, got.After(now), "relative time %q resolved after now", s)
			require.False(t, got.Before(now.Add(-maxRelative)), "relative time %q beyond the bound", s)
		}
	})
}
