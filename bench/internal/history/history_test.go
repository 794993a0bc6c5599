package history

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eventpipe/eventpipe/internal/store/clickhouse/storetest"
)

// TestFill writes a small history into a real ClickHouse and checks that it
// has the promised shape: the size, the window, the tenants, identities
// that no two copies share, and events with several states.
func TestFill(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	o := Options{Events: 60_000, Days: 3, Tenants: 7, TenantName: func(i int) string { return fmt.Sprintf("tenant-%d", i) }, Now: now, Corpus: 20_000}
	if Reusable(ctx, s, o) {
		t.Fatal("an empty store is reusable")
	}
	r, err := Fill(ctx, s, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rows != 60_000 || r.MaxSeq != 60_000 {
		t.Errorf("rows %d, max seq %d; want 60000 each (3 copies of 20000)", r.Rows, r.MaxSeq)
	}
	if !Reusable(ctx, s, o) {
		t.Error("a fresh history of the asked size is not reusable")
	}
	if o.Events *= 2; Reusable(ctx, s, o) {
		t.Error("a history half the asked size is reusable")
	}

	var events, tenants, seqs, maxStates uint64
	var oldest, newest time.Time
	q := "SELECT uniqExact(scope_name, namespace, name), uniqExact(scope_name), uniqExact(seq), min(last_ts), max(last_ts) FROM " + eventsTable(s)
	if err := s.Conn().QueryRow(ctx, q).Scan(&events, &tenants, &seqs, &oldest, &newest); err != nil {
		t.Fatal(err)
	}
	q = "SELECT max(n) FROM (SELECT count() AS n FROM " + eventsTable(s) + " GROUP BY scope_name, namespace, name)"
	if err := s.Conn().QueryRow(ctx, q).Scan(&maxStates); err != nil {
		t.Fatal(err)
	}
	if seqs != r.Rows {
		t.Errorf("%d distinct sequences in %d rows", seqs, r.Rows)
	}
	if tenants != 7 {
		t.Errorf("%d tenants; want 7", tenants)
	}
	// The corpus updates and deletes events, so there are fewer events
	// than states, and some have several; but never as many as a copy
	// count would give if copies shared identities.
	if events >= r.Rows || maxStates < 2 {
		t.Errorf("%d events in %d states, at most %d states per event; want updates", events, r.Rows, maxStates)
	}
	start := now.Add(-72 * time.Hour).Truncate(time.Second)
	if oldest.Before(start) || !newest.Before(now.Add(time.Second)) {
		t.Errorf("states from %s to %s; want inside [%s, %s]", oldest, newest, start, now)
	}
	if newest.Before(now.Add(-2 * time.Hour)) {
		t.Errorf("newest state %s; want the history to reach now (%s)", newest, now)
	}

	// Renamed objects are renamed inside their messages too.
	var stale uint64
	q = "SELECT count() FROM " + eventsTable(s) + " WHERE involved_name != '' AND position(message, involved_name) = 0 AND position(message, substring(involved_name, 1, length(involved_name) - 2)) > 0"
	if err := s.Conn().QueryRow(ctx, q).Scan(&stale); err != nil {
		t.Fatal(err)
	}
	if stale != 0 {
		t.Errorf("%d messages name their object by the corpus' name", stale)
	}
	if _, err := Describe(ctx, s); err != nil {
		t.Fatal(err)
	}
}
