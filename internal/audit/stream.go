package audit

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventpipe/eventpipe/internal/eventlog"
)

// Ensure creates or updates the AUDIT stream. It takes its settings from
// the EVENTS stream's (--stream.* flags), so that the two logs have the
// same replicas, duplicate window and record size bound, and the audit log
// half the bytes: there is one flag set to tune, and audit records are
// fewer and indexed as fast. The state bucket must exist (eventlog.Ensure).
func Ensure(ctx context.Context, js jetstream.JetStream, c eventlog.Config) error {
	if _, err := eventlog.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "eventpipe: kube-apiserver audit records, one per request stage; deduplicated by auditID",
		Subjects:    []string{SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		// As for EVENTS: refuse (kube-apiserver retries the batch) rather
		// than drop records not yet indexed; the indexer trims what it has
		// committed.
		Discard:    jetstream.DiscardNew,
		MaxBytes:   max(c.MaxBytes/2, 1<<20),
		Duplicates: c.DuplicateWindow,
		Replicas:   c.Replicas,
		MaxMsgSize: c.MaxMsgSize,
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	return nil
}
