// Package tenancy decides which tenant a request acts for.
//
// A caller's scope comes from its authenticated identity, never from what it
// writes: members of the platform groups act for the whole platform (they
// read every tenant and may write into any scope); everyone else must carry
// the user extras iam.miloapis.com/parent-type and parent-name, set by the
// authenticator (a token file, the host cluster's TokenReview, or the front
// proxy's X-Remote-Extra-* headers). A caller with a missing, unknown or
// incomplete scope is refused with 403; it is never widened to all tenants.
package tenancy

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// The user extras that name a tenant caller's scope.
const (
	ExtraParentType = "iam.miloapis.com/parent-type"
	ExtraParentName = "iam.miloapis.com/parent-name"
)

// TenantTypes are the scope types a tenant caller may have, in their one
// canonical case.
var TenantTypes = []string{scope.TypeOrganization, scope.TypeProject, scope.TypeUser}

// Caller is who a request acts for.
type Caller struct {
	// Platform callers read every scope and write into any.
	Platform bool
	// Scope is a tenant caller's scope; scope.Platform for platform callers.
	Scope scope.Scope
}

// Resolver maps authenticated users to callers.
type Resolver struct {
	platformGroups map[string]bool
}

// NewResolver returns a Resolver for which members of any of groups are
// platform callers.
func NewResolver(groups []string) *Resolver {
	r := &Resolver{platformGroups: map[string]bool{}}
	for _, g := range groups {
		r.platformGroups[g] = true
	}
	return r
}

// IsPlatform reports whether u belongs to a platform group.
func (r *Resolver) IsPlatform(u user.Info) bool {
	if u == nil {
		return false
	}
	for _, g := range u.GetGroups() {
		if r.platformGroups[g] {
			return true
		}
	}
	return false
}

// Caller returns who u acts for, or why u may act for nobody. The error
// says what is missing and what is allowed; it reads after the user's name
// ("User "bob" has no tenant scope: ...").
func (r *Resolver) Caller(u user.Info) (Caller, error) {
	if u == nil {
		return Caller{}, fmt.Errorf("is not authenticated")
	}
	if r.IsPlatform(u) {
		return Caller{Platform: true, Scope: scope.Platform}, nil
	}
	extra := u.GetExtra()
	types, names := extra[ExtraParentType], extra[ExtraParentName]
	switch {
	case len(types) == 0:
		return Caller{}, fmt.Errorf("has no tenant scope: the user extras %s (one of %s) and %s are required",
			ExtraParentType, strings.Join(TenantTypes, ", "), ExtraParentName)
	case len(types) > 1 || len(names) > 1:
		return Caller{}, fmt.Errorf("has more than one value in the user extra %s or %s; exactly one scope is allowed",
			ExtraParentType, ExtraParentName)
	case len(names) == 0 || names[0] == "":
		return Caller{}, fmt.Errorf("has the user extra %s %q but no %s; both are required",
			ExtraParentType, types[0], ExtraParentName)
	}
	sc := scope.Scope{Type: types[0], Name: names[0]}
	if !isTenantType(sc.Type) {
		return Caller{}, fmt.Errorf("has an unknown %s %q; allowed (exact case): %s",
			ExtraParentType, sc.Type, strings.Join(TenantTypes, ", "))
	}
	return Caller{Scope: sc}, nil
}

func isTenantType(t string) bool {
	for _, tt := range TenantTypes {
		if t == tt {
			return true
		}
	}
	return false
}

// FromContext returns who the request in ctx acts for, or a 403 Forbidden
// for the resource the request addresses that says what is missing.
func (r *Resolver) FromContext(ctx context.Context) (Caller, error) {
	u, _ := genericapirequest.UserFrom(ctx)
	c, err := r.Caller(u)
	if err == nil {
		return c, nil
	}
	var gr schema.GroupResource
	if ri, ok := genericapirequest.RequestInfoFrom(ctx); ok {
		gr = schema.GroupResource{Group: ri.APIGroup, Resource: ri.Resource}
	}
	who := "The request"
	if u != nil {
		who = fmt.Sprintf("User %q", u.GetName())
	}
	return Caller{}, apierrors.NewForbidden(gr, "", fmt.Errorf("%s %w", who, err))
}
