// Package listquery is what the Events and Activities registries share in
// beginning a list or a watch: the request's options, the caller's scope
// and namespace (Begin), and its selectors split into what an index can
// filter on (exact-match field conditions) and the match in memory that
// decides. Both registries filter the index's rows, and the log's states,
// this way.
package listquery

import (
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Cond is one exact-match condition on a field-selector field.
type Cond struct {
	Field string
	// Not makes it an inequality.
	Not   bool
	Value string
}

// Query is what a list or a watch selects.
type Query struct {
	// Conds are the field selector's equalities and inequalities, for an
	// index to narrow its rows with. They never select more than Matches.
	Conds  []Cond
	fields fields.Selector
	labels labels.Selector
}

// New returns the query of opts' selectors.
func New(opts *metainternalversion.ListOptions) Query {
	q := Query{fields: fields.Everything(), labels: labels.Everything()}
	if opts.FieldSelector != nil {
		q.fields = opts.FieldSelector
		for _, req := range opts.FieldSelector.Requirements() {
			switch req.Operator {
			case selection.Equals, selection.DoubleEquals:
				q.Conds = append(q.Conds, Cond{Field: req.Field, Value: req.Value})
			case selection.NotEquals:
				q.Conds = append(q.Conds, Cond{Field: req.Field, Not: true, Value: req.Value})
			}
		}
	}
	if opts.LabelSelector != nil {
		q.labels = opts.LabelSelector
	}
	return q
}

// Matches reports whether an object with labels lbls, and the field set
// fieldSet returns, is selected. fieldSet is called only for a query with
// a field selector: building the set was a noticeable part of a watch's
// work per state.
func (q Query) Matches(lbls map[string]string, fieldSet func() fields.Set) bool {
	if !q.labels.Matches(labels.Set(lbls)) {
		return false
	}
	return q.fields.Empty() || q.fields.Matches(fieldSet())
}
