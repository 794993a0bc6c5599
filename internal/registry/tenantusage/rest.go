// Package tenantusage serves TenantUsage (activity.miloapis.com/v1alpha1,
// cluster-scoped, get and list): each tenant's tier and how much of it is
// used, so that a tenant can see why a write was refused before it is.
package tenantusage

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/eventpipe/eventpipe/internal/registry/resource"
	"github.com/eventpipe/eventpipe/internal/scope"
	"github.com/eventpipe/eventpipe/internal/tiers"
	"github.com/eventpipe/eventpipe/internal/tiers/quota"
	"github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// Scopes limits what a caller sees to its own scope; nil means every scope.
type Scopes interface {
	ReadScope(ctx context.Context) (*scope.Scope, error)
}

// Usage is where the figures come from; *quota.Tracker has it.
type Usage interface {
	Usage(sc scope.Scope) quota.Usage
	Scopes() []scope.Scope
}

// Tenants lists the tenants the tiers file names; *tiers.Resolver's
// Config has it.
type Tenants interface {
	Config() *tiers.Config
}

// REST serves TenantUsage.
type REST struct {
	resource.Type
	scopes  Scopes
	usage   Usage
	tenants Tenants
	table   rest.TableConvertor
}

// NewREST returns the storage.
func NewREST(scopes Scopes, usage Usage, tenants Tenants) *REST {
	return &REST{Type: resource.New(func() runtime.Object { return &v1alpha1.TenantUsage{} }, "tenantusage", false), scopes: scopes, usage: usage, tenants: tenants, table: tableConvertor{}}
}

var (
	_ rest.Getter = (*REST)(nil)
	_ rest.Lister = (*REST)(nil)
)

var gr = v1alpha1.Resource("tenantusages")

// NewList implements rest.Lister.
func (r *REST) NewList() runtime.Object { return &v1alpha1.TenantUsageList{} }

// Name is the object name of sc's TenantUsage: "project.alpha".
func Name(sc scope.Scope) string { return strings.ToLower(sc.Type) + "." + sc.Name }

// Get implements rest.Getter. A tenant may get only its own.
func (r *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	mine, err := r.scopes.ReadScope(ctx)
	if err != nil {
		return nil, err
	}
	for _, sc := range r.known(mine) {
		if Name(sc) == name {
			return r.object(sc), nil
		}
	}
	return nil, apierrors.NewNotFound(gr, name)
}

// List implements rest.Lister: the caller's own usage for a tenant, every
// known tenant's for the platform. Selectors are not supported (the list
// is short).
func (r *REST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	mine, err := r.scopes.ReadScope(ctx)
	if err != nil {
		return nil, err
	}
	if opts != nil && ((opts.FieldSelector != nil && !opts.FieldSelector.Empty()) || (opts.LabelSelector != nil && !opts.LabelSelector.Empty())) {
		return nil, apierrors.NewBadRequest("tenantusages do not support field or label selectors")
	}
	l := &v1alpha1.TenantUsageList{}
	for _, sc := range r.known(mine) {
		l.Items = append(l.Items, *r.object(sc))
	}
	return l, nil
}

// known returns the scopes the caller may see: its own, or (platform)
// every tenant in the tiers file or with stored bytes, sorted.
func (r *REST) known(mine *scope.Scope) []scope.Scope {
	if mine != nil {
		return []scope.Scope{*mine}
	}
	seen := map[scope.Scope]bool{}
	for _, sc := range r.tenants.Config().Tenants() {
		seen[sc] = true
	}
	for _, sc := range r.usage.Scopes() {
		if !sc.IsPlatform() {
			seen[sc] = true
		}
	}
	out := make([]scope.Scope, 0, len(seen))
	for sc := range seen {
		out = append(out, sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func (r *REST) object(sc scope.Scope) *v1alpha1.TenantUsage {
	u := r.usage.Usage(sc)
	l := u.Limits
	return &v1alpha1.TenantUsage{
		ObjectMeta: metav1.ObjectMeta{Name: Name(sc)},
		Status: v1alpha1.TenantUsageStatus{
			ScopeType: sc.Type, ScopeName: sc.Name, Tier: l.Tier, Overridden: l.Overridden,
			StorageUsedBytes: u.Used, StorageQuotaBytes: l.StorageQuota,
			QueryWindow: tiers.FormatDuration(l.QueryWindow), Retention: tiers.FormatDuration(l.Retention),
			RateLimitSoftPerMinute: l.RateSoft, RateLimitHardPerMinute: l.RateHard,
		},
	}
}

// ConvertToTable implements rest.TableConvertor.
func (r *REST) ConvertToTable(ctx context.Context, obj runtime.Object, opts runtime.Object) (*metav1.Table, error) {
	return r.table.ConvertToTable(ctx, obj, opts)
}

type tableConvertor struct{}

var columns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "the tenant's scope, type.name"},
	{Name: "Tier", Type: "string", Description: "the tenant's tier"},
	{Name: "Storage", Type: "string", Description: "bytes stored / storage quota"},
	{Name: "Query Window", Type: "string", Description: "how far back EventQuery may look"},
	{Name: "Retention", Type: "string", Description: "how long events are kept"},
	{Name: "Rate Limit", Type: "string", Description: "event writes per minute: soft/hard"},
}

func (tableConvertor) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: columns}
	add := func(u *v1alpha1.TenantUsage) {
		s := u.Status
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells: []any{u.Name, s.Tier,
				fmt.Sprintf("%s / %s", tiers.FormatBytes(s.StorageUsedBytes), tiers.FormatBytes(s.StorageQuotaBytes)),
				s.QueryWindow, s.Retention,
				fmt.Sprintf("%s / %s", tiers.FormatRate(s.RateLimitSoftPerMinute), tiers.FormatRate(s.RateLimitHardPerMinute))},
			Object: runtime.RawExtension{Object: u},
		})
	}
	switch o := obj.(type) {
	case *v1alpha1.TenantUsage:
		add(o)
	case *v1alpha1.TenantUsageList:
		for i := range o.Items {
			add(&o.Items[i])
		}
	default:
		return nil, fmt.Errorf("cannot show %T as a table", obj)
	}
	return t, nil
}
