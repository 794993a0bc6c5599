package event

import (
	"context"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// Admission decides whether one more state of an event may be stored in a
// scope: the tiers' rate limits and storage quota. Admit refuses with the
// error the client gets (429, 403); when it admits, done must be called
// once with the state's sequence after the publish, or with the publish's
// error.
type Admission interface {
	Admit(ctx context.Context, sc scope.Scope, rec *eventlog.Record) (done func(seq uint64, err error), err error)
}
