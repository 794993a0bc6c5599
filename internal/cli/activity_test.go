package cli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDayDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "36h": 36 * time.Hour, "1d": 24 * time.Hour, "90m": 90 * time.Minute} {
		var d dayDuration
		require.NoError(t, d.Set(in), in)
		require.Equal(t, want, time.Duration(d), in)
	}
	for _, bad := range []string{"", "d", "0d", "-1d", "7 d", "7dd", "x"} {
		var d dayDuration
		require.Error(t, d.Set(bad), bad)
	}
}

func FuzzDayDuration(f *testing.F) {
	for _, s := range []string{"7d", "36h", "0d", "1h30m", "99999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d dayDuration
		if err := d.Set(s); err != nil {
			return
		}
		// What parses prints as a Go duration that parses to the same value.
		var again dayDuration
		require.NoError(t, again.Set(d.String()))
		require.Equal(t, d, again)
	})
}
