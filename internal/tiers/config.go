package tiers

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// Unlimited is the value of a quota, rate limit or query window that does
// not apply. Zero is never "unlimited": a zero Limits refuses everything.
const Unlimited = -1

// Names of the built-in tiers.
const (
	Free       = "Free"
	Pro        = "Pro"
	Enterprise = "Enterprise"
)

// Day is 24 hours; configuration durations accept a "d" suffix for it.
const Day = 24 * time.Hour

// Tier is one commercial tier's limits.
type Tier struct {
	Name string
	// QueryWindow is how far back EventQuery and facets may look.
	QueryWindow time.Duration
	// Retention is how long events are kept after their last observation;
	// never shorter than QueryWindow.
	Retention time.Duration
	// StorageQuota is the bytes a tenant may store (see
	// clickhouse.RowBytes), or Unlimited.
	StorageQuota int64
	// RateSoft and RateHard are events per minute, or Unlimited. Above
	// RateSoft a write is accepted with a warning; above RateHard refused.
	RateSoft, RateHard int64
}

// DefaultTiers returns the three commercial tiers of the product brief.
// Storage quotas are binary units (1 GB = 1Gi).
func DefaultTiers() []Tier {
	return []Tier{
		{Name: Free, QueryWindow: Day, Retention: Day, StorageQuota: 1 << 30, RateSoft: 100, RateHard: 500},
		{Name: Pro, QueryWindow: 60 * Day, Retention: 60 * Day, StorageQuota: 50 << 30, RateSoft: 1000, RateHard: 5000},
		{Name: Enterprise, QueryWindow: 90 * Day, Retention: 90 * Day, StorageQuota: Unlimited, RateSoft: Unlimited, RateHard: Unlimited},
	}
}

// Limits are one scope's effective limits: its tier's, with the tenant's
// overrides applied.
type Limits struct {
	Scope scope.Scope
	// Tier names the tier the limits come from ("Platform" for the
	// platform scope).
	Tier         string
	QueryWindow  time.Duration
	Retention    time.Duration
	StorageQuota int64
	RateSoft     int64
	RateHard     int64
	// Overridden is true when the tenant has per-tenant overrides.
	Overridden bool
}

// PlatformTier is the Tier name reported for the Platform scope.
const PlatformTier = "Platform"

// EarliestStart returns the oldest start time a query issued at now may
// ask for, and false when the query window is unlimited.
func (l Limits) EarliestStart(now time.Time) (time.Time, bool) {
	if l.QueryWindow == Unlimited {
		return time.Time{}, false
	}
	return now.Add(-l.QueryWindow), true
}

// Config is a parsed, validated tiers configuration. It is immutable once
// built and safe for concurrent use.
type Config struct {
	defaultTier string
	tiers       map[string]Tier
	tenants     map[scope.Scope]Limits
	maxRet      time.Duration
	minRet      time.Duration
	// digest identifies the source text, for logs.
	digest string
}

// Default returns the configuration with no file: the default tiers,
// everyone on Free.
func Default() *Config {
	c, err := Parse("default", nil)
	if err != nil {
		panic("BUG: the default tiers configuration does not parse: " + err.Error())
	}
	return c
}

// For returns the effective limits of sc. Platform is unlimited (its
// retention is the longest of any tier). A tenant without an entry gets the
// default tier. A scope that is not valid gets the default tier too: callers
// validate scopes first, and the fallback must never be wider than a tenant's.
func (c *Config) For(sc scope.Scope) Limits {
	if sc.IsPlatform() && sc.Name == "" {
		return Limits{Scope: sc, Tier: PlatformTier, QueryWindow: Unlimited, Retention: c.maxRet,
			StorageQuota: Unlimited, RateSoft: Unlimited, RateHard: Unlimited}
	}
	if l, ok := c.tenants[sc]; ok {
		return l
	}
	l := limitsOf(c.tiers[c.defaultTier])
	l.Scope = sc
	return l
}

func limitsOf(t Tier) Limits {
	return Limits{Tier: t.Name, QueryWindow: t.QueryWindow, Retention: t.Retention,
		StorageQuota: t.StorageQuota, RateSoft: t.RateSoft, RateHard: t.RateHard}
}

// DefaultTier names the tier of tenants the configuration does not list.
func (c *Config) DefaultTier() string { return c.defaultTier }

// Tier returns the named tier.
func (c *Config) Tier(name string) (Tier, bool) {
	t, ok := c.tiers[name]
	return t, ok
}

// TierNames lists the tiers, sorted.
func (c *Config) TierNames() []string {
	names := make([]string, 0, len(c.tiers))
	for n := range c.tiers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Tenants lists the scopes the configuration names, sorted.
func (c *Config) Tenants() []scope.Scope {
	out := make([]scope.Scope, 0, len(c.tenants))
	for sc := range c.tenants {
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b scope.Scope) int {
		if a.Type != b.Type {
			if a.Type < b.Type {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		} else if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// MaxRetention is the longest retention of any tier or tenant: the line past
// which whole day partitions are dropped, and the Platform scope's retention.
func (c *Config) MaxRetention() time.Duration { return c.maxRet }

// MinRetention is the shortest retention of any tier or tenant.
func (c *Config) MinRetention() time.Duration { return c.minRet }

// Digest is a short hash of the source text the configuration came from.
func (c *Config) Digest() string { return c.digest }

// FormatDuration writes d the way the configuration accepts it: in days
// from two whole days up ("60d"), in hours for whole hours ("24h"), else as
// Go writes durations.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= 2*Day && d%Day == 0:
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return d.String()
}

// FormatBytes writes a byte count with a binary unit when it is a whole
// number of them ("1Gi"), else in bytes.
func FormatBytes(n int64) string {
	if n == Unlimited {
		return "unlimited"
	}
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}} {
		if n > 0 && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}

// FormatRate writes a per-minute rate.
func FormatRate(n int64) string {
	if n == Unlimited {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10) + "/min"
}
