package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// EventSource is what reindexing reads: stored events by latest state.
type EventSource interface {
	List(ctx context.Context, q chstore.ListQuery) ([]*eventlog.Record, error)
}

// ReindexResult counts what a reindex did.
type ReindexResult struct {
	Events, Published, Skipped int
}

// Reindex rebuilds the Activities of every event last observed since since,
// from the events stored in ClickHouse, with the current policies. It runs
// beside a live processor safely: an event whose Activity already comes
// from a newer state than the stored one is skipped, and each publish
// expects the subject's last sequence it read, so a concurrent live update
// wins.
func Reindex(ctx context.Context, js jetstream.JetStream, events EventSource, set *Set, since time.Time, log *slog.Logger) (ReindexResult, error) {
	var res ReindexResult
	st, err := js.Stream(ctx, StreamName)
	if err != nil {
		return res, fmt.Errorf("open stream %s: %w", StreamName, err)
	}
	q := chstore.ListQuery{LatestFilter: chstore.LatestFilter{Since: since}, Limit: 2000}
	for {
		recs, err := events.List(ctx, q)
		if err != nil {
			return res, fmt.Errorf("reindex: %w", err)
		}
		for _, rec := range recs {
			res.Events++
			published, err := reindexOne(ctx, js, st, set, rec)
			if err != nil {
				return res, err
			}
			if published {
				res.Published++
			} else {
				res.Skipped++
			}
		}
		if len(recs) < q.Limit {
			break
		}
		last := recs[len(recs)-1]
		q.After = &chstore.Cursor{Namespace: last.Key.Namespace, Name: last.Key.Name, Scope: last.Key.Scope}
		log.Info("reindexing activities", "events", res.Events, "published", res.Published)
	}
	return res, nil
}

func reindexOne(ctx context.Context, js jetstream.JetStream, st jetstream.Stream, set *Set, rec *eventlog.Record) (bool, error) {
	subj := Subject(rec.Key)
	var expect uint64
	m, err := st.GetLastMsgForSubject(ctx, subj)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return false, fmt.Errorf("reindex %s: %w", subj, err)
	default:
		expect = m.Sequence
		if src, _ := strconv.ParseUint(m.Header.Get(HeaderSourceSeq), 10, 64); src > rec.Seq {
			return false, nil // the live processor already wrote a newer state
		}
	}
	a := Build(rec, set.Evaluate(rec.Event), rec.Event.LastTimestamp.Time)
	msg, err := encode(rec.Key, a, rec.Seq, expect == 0)
	if err != nil {
		return false, err
	}
	_, err = js.PublishMsg(ctx, msg, jetstream.WithExpectStream(StreamName), jetstream.WithExpectLastSequencePerSubject(expect))
	if eventlog.IsWrongLastSequence(err) {
		return false, nil // a live update came in meanwhile and wins
	}
	if err != nil {
		return false, fmt.Errorf("reindex %s: %w", subj, err)
	}
	return true, nil
}
