package tiers_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/tiers"
	"github.com/eventpipe/eventpipe/internal/tiers/tierstest"
)

var (
	alpha = tierstest.Alpha
	beta  = tierstest.Beta
)

func TestDefaultsAreTheProductTable(t *testing.T) {
	c := tiers.Default()
	require.Equal(t, tiers.Free, c.DefaultTier())
	require.Equal(t, []string{"Enterprise", "Free", "Pro"}, c.TierNames())
	free := c.For(alpha)
	require.Equal(t, tiers.Limits{Scope: alpha, Tier: "Free", QueryWindow: 24 * time.Hour, Retention: 24 * time.Hour,
		StorageQuota: 1 << 30, RateSoft: 100, RateHard: 500}, free)
	pro, _ := c.Tier(tiers.Pro)
	require.Equal(t, tiers.Tier{Name: "Pro", QueryWindow: 60 * tiers.Day, Retention: 60 * tiers.Day,
		StorageQuota: 50 << 30, RateSoft: 1000, RateHard: 5000}, pro)
	ent, _ := c.Tier(tiers.Enterprise)
	require.Equal(t, tiers.Tier{Name: "Enterprise", QueryWindow: 90 * tiers.Day, Retention: 90 * tiers.Day,
		StorageQuota: tiers.Unlimited, RateSoft: tiers.Unlimited, RateHard: tiers.Unlimited}, ent)
	p := c.For(scope.Platform)
	require.Equal(t, tiers.PlatformTier, p.Tier)
	require.EqualValues(t, tiers.Unlimited, p.QueryWindow)
	require.EqualValues(t, tiers.Unlimited, p.StorageQuota)
	require.EqualValues(t, tiers.Unlimited, p.RateHard)
	require.Equal(t, 90*tiers.Day, p.Retention, "platform events live as long as the longest tier's")
	require.Equal(t, 90*tiers.Day, c.MaxRetention())
	require.Equal(t, tiers.Day, c.MinRetention())
	// Not valid scopes fall back to the default tier, never to unlimited.
	require.Equal(t, "Free", c.For(scope.Scope{Type: "project", Name: "alpha"}).Tier)
	require.Equal(t, "Free", c.For(scope.Scope{Type: scope.TypePlatform, Name: "x"}).Tier)
}

func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("../../deploy/tiers.yaml")
	require.NoError(t, err)
	c, err := tiers.Parse("deploy/tiers.yaml", data)
	require.NoError(t, err)
	require.Equal(t, []string{"Enterprise", "Free", "Pro", "Team"}, c.TierNames())
	require.Equal(t, "Enterprise", c.For(scope.Scope{Type: scope.TypeOrganization, Name: "acme"}).Tier)
	require.Equal(t, "Pro", c.For(alpha).Tier)
	b := c.For(beta)
	require.Equal(t, tiers.Limits{Scope: beta, Tier: "Team", QueryWindow: 7 * tiers.Day, Retention: 14 * tiers.Day,
		StorageQuota: 20 << 30, RateSoft: 500, RateHard: 2000, Overridden: true}, b)
	big := c.For(scope.Scope{Type: scope.TypeOrganization, Name: "bigco"})
	require.Equal(t, 180*tiers.Day, big.QueryWindow)
	require.Equal(t, 180*tiers.Day, big.Retention, "retention follows a longer window")
	alice := c.For(scope.Scope{Type: scope.TypeUser, Name: "alice"})
	require.Equal(t, "Free", alice.Tier)
	require.EqualValues(t, 200, alice.RateSoft)
	require.Equal(t, 180*tiers.Day, c.MaxRetention())
	require.Equal(t, "Free", c.For(scope.Scope{Type: scope.TypeProject, Name: "unlisted"}).Tier)
}

func TestParseRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		// check runs on success; want lists substrings of the error.
		check func(t *testing.T, c *tiers.Config)
		want  []string
	}{
		{name: "empty", yaml: "", check: func(t *testing.T, c *tiers.Config) { require.Equal(t, "Free", c.For(alpha).Tier) }},
		{name: "comments only", yaml: "# nothing\n", check: func(t *testing.T, c *tiers.Config) { require.Equal(t, "Free", c.For(alpha).Tier) }},
		{name: "default tier", yaml: "defaultTier: Pro\n", check: func(t *testing.T, c *tiers.Config) { require.Equal(t, "Pro", c.For(alpha).Tier) }},
		{name: "tier retention follows a changed window", yaml: "tiers:\n  Pro:\n    queryWindow: 30d\n",
			check: func(t *testing.T, c *tiers.Config) {
				p, _ := c.Tier("Pro")
				require.Equal(t, 30*tiers.Day, p.Retention)
			}},
		{name: "days and hours", yaml: "tiers:\n  Free:\n    queryWindow: 1d12h\n",
			check: func(t *testing.T, c *tiers.Config) { require.Equal(t, 36*time.Hour, c.For(alpha).QueryWindow) }},
		{name: "quota forms", yaml: "tenants:\n  Project/alpha: {storageQuota: \"1073741824\"}\n  Project/beta: {storageQuota: 500M}\n",
			check: func(t *testing.T, c *tiers.Config) {
				require.EqualValues(t, 1<<30, c.For(alpha).StorageQuota)
				require.EqualValues(t, 500_000_000, c.For(beta).StorageQuota)
			}},
		{name: "tenant with null body is the default tier", yaml: "tenants:\n  Project/alpha:\n",
			check: func(t *testing.T, c *tiers.Config) { require.Equal(t, "Free", c.For(alpha).Tier) }},

		{name: "syntax", yaml: "tiers: [\n", want: []string{"line 1"}},
		{name: "unknown top field", yaml: "defaultTier: Free\ntenant:\n  Project/alpha: Pro\n",
			want: []string{"line 2: tenant: unknown field; allowed: defaultTier, tenants, tiers"}},
		{name: "unknown tier field", yaml: "tiers:\n  Free:\n    querywindow: 1h\n",
			want: []string{"line 3: tiers.Free.querywindow: unknown field"}},
		{name: "unknown tier for tenant", yaml: "tenants:\n  Project/alpha: Gold\n",
			want: []string{`line 2: tenants["Project/alpha"].tier: unknown tier "Gold"; defined tiers: Enterprise, Free, Pro`}},
		{name: "unknown tier in mapping", yaml: "tenants:\n  Project/alpha:\n    tier: Gold\n",
			want: []string{`line 3: tenants["Project/alpha"].tier: unknown tier "Gold"`}},
		{name: "unknown default tier", yaml: "defaultTier: Gold\n", want: []string{`line 1: defaultTier: unknown tier "Gold"`}},
		{name: "wrong case scope", yaml: "tenants:\n  project/alpha: Pro\n",
			want: []string{`line 2: tenants["project/alpha"]: not a tenant scope`, "exact case"}},
		{name: "scope without name", yaml: "tenants:\n  Project: Pro\n", want: []string{`line 2: tenants["Project"]`, "needs a name"}},
		{name: "platform", yaml: "tenants:\n  Platform: Pro\n", want: []string{"always unlimited"}},
		{name: "duplicate tenant", yaml: "tenants:\n  Project/alpha: Pro\n  Project/alpha: Free\n",
			want: []string{`line 3: tenants["Project/alpha"]: listed twice (first on line 2)`}},
		{name: "new tier incomplete", yaml: "tiers:\n  Gold:\n    queryWindow: 7d\n",
			want: []string{"line 2: tiers.Gold.storageQuota: a new tier must set it", "tiers.Gold.rateLimit.soft", "tiers.Gold.rateLimit.hard"}},
		{name: "bad values, all reported", yaml: "tiers:\n  Free:\n    queryWindow: 24\n    storageQuota: 1GB\n    rateLimit:\n      soft: -1\n      hard: lots\n",
			want: []string{"line 3: tiers.Free.queryWindow: duration \"24\"", "line 4: tiers.Free.storageQuota", "line 6: tiers.Free.rateLimit.soft", "line 7: tiers.Free.rateLimit.hard", "(4 problems)"}},
		{name: "soft above hard", yaml: "tenants:\n  Project/alpha:\n    rateLimit: {soft: 600}\n",
			want: []string{`line 2: tenants["Project/alpha"].rateLimit: soft limit 600 is above hard limit 500`}},
		{name: "retention below window", yaml: "tiers:\n  Pro:\n    retention: 7d\n",
			want: []string{"line 2: tiers.Pro.retention: retention 7d is shorter than queryWindow 60d"}},
		{name: "window too short", yaml: "tiers:\n  Free:\n    queryWindow: 30s\n", want: []string{"between 1m and"}},
		{name: "tiers as list", yaml: "tiers:\n  - Free\n", want: []string{"line 2: tiers: must be a mapping, got a list"}},
		{name: "alias", yaml: "tiers:\n  Free: &f\n    queryWindow: 1h\n  Pro: *f\n", want: []string{"aliases are not supported"}},
		{name: "two documents", yaml: "defaultTier: Free\n---\ndefaultTier: Pro\n", want: []string{"only one YAML document"}},
		{name: "reserved tier name", yaml: "tiers:\n  Platform:\n    queryWindow: 1h\n", want: []string{"reserved"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tiers.Parse("t.yaml", []byte(tc.yaml))
			if tc.want == nil {
				require.NoError(t, err)
				tc.check(t, c)
				return
			}
			require.Error(t, err)
			require.Nil(t, c)
			var pe *tiers.ParseError
			require.ErrorAs(t, err, &pe)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.True(t, strings.HasPrefix(err.Error(), "tiers config t.yaml is not valid"), err.Error())
		})
	}
}

// FuzzParse: any input either parses into a configuration whose limits are
// consistent, or is rejected with at least one problem; never a panic.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../../deploy/tiers.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{"", "defaultTier: Pro", "tiers:\n  Free:\n    queryWindow: 1d12h\n",
		"tenants:\n  Project/a: {tier: Pro, rateLimit: {soft: 1, hard: 2}}\n", "tiers: [", "tenants:\n  x: &a y\n  z: *a\n",
		"tiers:\n  Free:\n    storageQuota: 1e30\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := tiers.Parse("fuzz.yaml", data)
		if err != nil {
			var pe *tiers.ParseError
			if !errorsAs(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			return
		}
		for _, sc := range append(c.Tenants(), alpha) {
			l := c.For(sc)
			if l.Retention < l.QueryWindow || l.Retention <= 0 || l.Retention > c.MaxRetention() || l.Retention < c.MinRetention() {
				t.Fatalf("inconsistent limits for %s: %+v (max %s)", sc, l, c.MaxRetention())
			}
			if l.RateSoft != tiers.Unlimited && l.RateHard != tiers.Unlimited && l.RateSoft > l.RateHard {
				t.Fatalf("soft above hard for %s: %+v", sc, l)
			}
		}
	})
}
