// Package scope names the tenant that owns an event.
//
// Every stored event belongs to exactly one scope. Tenants are Organizations,
// Projects or Users (the iam.miloapis.com parent types); events written by the
// platform itself, with no tenant, belong to the Platform scope. Type names are
// matched exactly, in the canonical case given by the constants below, everywhere:
// in API requests, in stored rows, in JetStream subjects and in exporter flags.
// On an Event served by the API, two annotations name its scope (see
// AnnotationType).
package scope

import (
	"fmt"
	"strings"
)

// Canonical scope types.
const (
	TypePlatform     = "Platform"
	TypeOrganization = "Organization"
	TypeProject      = "Project"
	TypeUser         = "User"
)

// Types lists the scope types a stored event may carry.
var Types = []string{TypePlatform, TypeOrganization, TypeProject, TypeUser}

// Scope identifies the owner of an event.
type Scope struct {
	// Type is one of the Type* constants.
	Type string
	// Name is the tenant's name; empty only for the Platform scope.
	Name string
}

// Platform is the scope of events that belong to no tenant.
var Platform = Scope{Type: TypePlatform}

// IsPlatform reports whether s is the Platform scope.
func (s Scope) IsPlatform() bool { return s.Type == TypePlatform }

// String renders the scope as "Type/Name" (or "Platform").
func (s Scope) String() string {
	if s.IsPlatform() {
		return TypePlatform
	}
	return s.Type + "/" + s.Name
}

// Validate reports why s cannot own events, or nil.
func (s Scope) Validate() error {
	switch s.Type {
	case TypePlatform:
		if s.Name != "" {
			return fmt.Errorf("scope type %q takes no name, got %q", s.Type, s.Name)
		}
		return nil
	case TypeOrganization, TypeProject, TypeUser:
		if s.Name == "" {
			return fmt.Errorf("scope type %q needs a name", s.Type)
		}
		return nil
	case "":
		return fmt.Errorf("scope type is empty; allowed: %s", strings.Join(Types, ", "))
	default:
		return fmt.Errorf("unknown scope type %q; allowed (exact case): %s", s.Type, strings.Join(Types, ", "))
	}
}

// Parse reads "Type/Name" or "Platform", the form String writes.
func Parse(s string) (Scope, error) {
	typ, name, _ := strings.Cut(s, "/")
	sc := Scope{Type: typ, Name: name}
	if err := sc.Validate(); err != nil {
		return Scope{}, err
	}
	return sc, nil
}
