// Package conformance plays the same scripted requests against a real
// kube-apiserver v1.37.2 (with etcd) and against eventpipe, and requires
// the answers to match: status code, content type, warnings and body (the
// Table kubectl receives included), ignoring only what a server assigns on
// its own (uid, resourceVersion, creationTimestamp, managedFields, random
// name suffixes, ages). See normalize_test.go for exactly what is ignored
// and why, and cases_test.go for the cases.
//
// Differences that are not fixed yet are marked knownDiff on their case:
// the case still runs, its eventpipe answers must equal the recording in
// testdata/known, and the summary lists it.
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

	// One cluster and one eventpipe stack for every case; each case has
	// its own namespace.
	kube := startKube(t)
	ep := startEventpipe(t)

	var mu sync.Mutex
	var matched, failed []string
	known := map[string]string{}
	t.Run("case", func(t *testing.T) {
		for i, c := range cases {
			ns := nsName(i)
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				if err := kube.prepareNamespace(ctx, ns); err != nil {
					t.Fatal(err)
				}
				// Counted once the case has finished, whatever ended it.
				defer func() {
					mu.Lock()
					defer mu.Unlock()
					switch {
					case t.Failed():
						failed = append(failed, c.name)
					case c.knownDiff != "":
						known[c.name] = c.knownDiff
					default:
						matched = append(matched, c.name)
					}
				}()
				results, err := run(ctx, c, ns, kube, ep)
				ok := err == nil && allEqual(results)
				if *dumpDir != "" {
					if err := dump(c, results); err != nil {
						t.Error(err)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.knownDiff != "" {
					if ok {
						t.Errorf("case marked knownDiff (%s) now matches kube-apiserver: remove the mark and %s", c.knownDiff, knownPath(c.name))
						return
					}
					t.Logf("known difference: %s", c.knownDiff)
					logDiffs(t, results, t.Logf)
					checkKnown(t, c, ns, results)
					return
				}
				logDiffs(t, results, t.Errorf)
			})
		}
	})

	sort.Strings(matched)
	sort.Strings(failed)
	t.Logf("conformance: %d cases run (of %d), %d match kube-apiserver exactly, %d known differences, %d failing",
		len(matched)+len(known)+len(failed), len(cases), len(matched), len(known), len(failed))
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
func logDiffs(t *testing.T, results []stepResult, report func(string, ...any)) {
	t.Helper()
	for i, r := range results {
		if r.equal() {
			continue
		}
		// assert.Equal renders a line diff of the two answers.
		rec := &diffRecorder{}
		assert.Equal(rec, pretty(r.Kube), pretty(r.Eventpipe))
		report("step %d: %s: kube-apiserver (expected) and eventpipe (actual) answer differently:%s", i+1, r.Request, rec.msg)
	}
}

// diffRecorder captures testify's failure text.
type diffRecorder struct{ msg string }

func (d *diffRecorder) Errorf(format string, args ...any) {
	d.msg += "\n" + fmt.Sprintf(format, args...)
}
