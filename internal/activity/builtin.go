package activity

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"

	"sigs.k8s.io/yaml"

	activityv1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

// builtinFS holds the policies eventpipe ships. They are installed when
// absent and are ordinary, editable ActivityPolicies after that: nothing
// about them is hard-coded here.
//
//go:embed builtin/*.yaml
var builtinFS embed.FS

// Builtins returns the shipped policies, sorted by name.
func Builtins() ([]*activityv1alpha1.ActivityPolicy, error) {
	files, err := fs.Glob(builtinFS, "builtin/*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list built-in policies: %w", err)
	}
	var out []*activityv1alpha1.ActivityPolicy
	for _, f := range files {
		b, err := builtinFS.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read built-in policy %s: %w", f, err)
		}
		p := &activityv1alpha1.ActivityPolicy{}
		if err := yaml.UnmarshalStrict(b, p); err != nil {
			return nil, fmt.Errorf("decode built-in policy %s: %w", f, err)
		}
		if p.Kind != "ActivityPolicy" || p.APIVersion != activityv1alpha1.SchemeGroupVersion.String() {
			return nil, fmt.Errorf("built-in policy %s: want kind ActivityPolicy of %s", f, activityv1alpha1.SchemeGroupVersion)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// BuiltinSet compiles the shipped policies into a set (tests, benchmarks,
// previews without a policy store).
func BuiltinSet() (*Set, error) {
	ps, err := Builtins()
	if err != nil {
		return nil, err
	}
	var compiled []*Policy
	for _, p := range ps {
		cp, errs := Compile(p)
		if len(errs) > 0 {
			return nil, fmt.Errorf("built-in policy %s: %w", p.Name, errs.ToAggregate())
		}
		compiled = append(compiled, cp)
	}
	return NewSet(compiled), nil
}
