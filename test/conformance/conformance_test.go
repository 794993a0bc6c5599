// Package conformance plays the same scripted requests against a real
// kube-apiserver v1.37.2 (with etcd) and against eventpipe, and requires
// the answers to match: status code, content type, warnings and body (the
// Table kubectl receives included), ignoring only what a server assigns on
// its own (uid, resourceVersion, creationTimestamp, managedFields, random
// name suffixes, ages). See normalize_test.go for exactly what is ignored
// and why, and cases_test.go for the cases.
//
// TestConformance compares eventpipe's own API with kube-apiserver.
// Differences that are not fixed yet are marked knownDiff on their case:
// the case still runs, its eventpipe answers must equal the recording in
// testdata/known, and the summary lists it.
//
// TestConformanceThroughEtcdFront plays the same cases against two
// kube-apiservers, one with its Events in a real etcd and one that stores
// them in eventpipe through the etcd front (--etcd-servers-overrides), and
// requires every case to match exactly (invariant 6 in
// docs/architecture.md): both sides are kube-apiserver, so the knownDiff
// marks, which describe eventpipe's own API, do not apply.
package conformance

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/eventpipe/eventpipe/internal/kubetest"
)

// minCases is the size the suite promises (issue 3, acceptance 1).
const minCases = 80

func TestConformance(t *testing.T) {
	kubetest.Binaries(t) // skip (or, in CI, fail) before starting anything
	cases := suiteCases(t)

	// One cluster and one eventpipe stack for every case; each case has
	// its own namespace.
	kube := startKube(t)
	ep := startEventpipe(t)
	compare(t, cases, kube, ep, true)
}

// TestConformanceThroughEtcdFront is issue 16's "Differential" acceptance:
// a kube-apiserver whose Events go to eventpipe's etcd front answers every
// case as a kube-apiserver over a real etcd does.
func TestConformanceThroughEtcdFront(t *testing.T) {
	kubetest.Binaries(t)
	cases := suiteCases(t)

	kube := startKube(t)
	front := startKubeThroughEtcdFront(t)
	compare(t, cases, kube, front.server, false)

	// The comparison proves something only if the Events really went
	// through the front: eventpipe holds them, the cluster's etcd none.
	front.requireEventsInEventpipe(t)
}

// suiteCases returns the cases, checking that the suite keeps its size
// and that no name is used twice.
func suiteCases(t *testing.T) []tcase {
	t.Helper()
	cases := allCases()
	if len(cases) < minCases {
		t.Fatalf("%d cases; the suite promises at least %d", len(cases), minCases)
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("case %q defined twice", c.name)
		}
		seen[c.name] = true
	}
	return cases
}

// compare plays every case, in parallel, against want (a kube-apiserver
// over etcd, the reference) and got, each case in its own namespace on
// both, and requires the answers to match. With knownDiffs, a case marked
// knownDiff must differ as recorded in testdata/known instead (got is
// eventpipe's own API); without, every case must match exactly.
func compare(t *testing.T, cases []tcase, want, got *server, knownDiffs bool) {
	t.Helper()
	var mu sync.Mutex
	var matched, failed []string
	known := map[string]string{}
	t.Run("case", func(t *testing.T) {
		for i, c := range cases {
			ns := nsName(i)
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				for _, s := range []*server{want, got} {
					if err := s.prepareNamespace(ctx, ns); err != nil {
						t.Fatalf("%s: %v", s.name, err)
					}
				}
				knownDiff := ""
				if knownDiffs {
					knownDiff = c.knownDiff
				}
				// Counted once the case has finished, whatever ended it.
				defer func() {
					mu.Lock()
					defer mu.Unlock()
					switch {
					case t.Failed():
						failed = append(failed, c.name)
					case knownDiff != "":
						known[c.name] = knownDiff
					default:
						matched = append(matched, c.name)
					}
				}()
				results, err := run(ctx, c, ns, want, got)
				ok := err == nil && allEqual(results)
				if *dumpDir != "" {
					if err := dump(t, c, results, want, got); err != nil {
						t.Error(err)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				if knownDiff != "" {
					if ok {
						t.Errorf("case marked knownDiff (%s) now matches %s: remove the mark and %s", knownDiff, want.name, knownPath(c.name))
						return
					}
					t.Logf("known difference: %s", knownDiff)
					logDiffs(t, results, want, got, t.Logf)
					checkKnown(t, c, ns, results)
					return
				}
				logDiffs(t, results, want, got, t.Errorf)
			})
		}
	})

	sort.Strings(matched)
	sort.Strings(failed)
	t.Logf("conformance of %s against %s: %d cases run (of %d), %d match exactly, %d known differences, %d failing",
		got.name, want.name, len(matched)+len(known)+len(failed), len(cases), len(matched), len(known), len(failed))
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("  known difference %s: %s", n, known[n])
	}
	if len(failed) > 0 {
		t.Logf("  failing: %s", strings.Join(failed, ", "))
	}
}

func allEqual(results []stepResult) bool {
	for _, r := range results {
		if !r.equal() {
			return false
		}
	}
	return true
}

// logDiffs reports each step whose answers differ.
func logDiffs(t *testing.T, results []stepResult, want, got *server, report func(string, ...any)) {
	t.Helper()
	for i, r := range results {
		if r.equal() {
			continue
		}
		// assert.Equal renders a line diff of the two answers.
		rec := &diffRecorder{}
		assert.Equal(rec, pretty(r.Want), pretty(r.Got))
		report("step %d: %s: %s (expected) and %s (actual) answer differently:%s", i+1, r.Request, want.name, got.name, rec.msg)
	}
}

// diffRecorder captures testify's failure text.
type diffRecorder struct{ msg string }

func (d *diffRecorder) Errorf(format string, args ...any) {
	d.msg += "\n" + fmt.Sprintf(format, args...)
}
