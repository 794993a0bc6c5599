package clickhouse

import (
	"context"
	"errors"
	"time"
)

// TEMPORARY until the audit store branch is merged.
type AuditRow struct {
	ScopeType, ScopeName        string
	AuditID, Stage              string
	Seq                         uint64
	RequestTime                 time.Time
	RequestNanos                uint32
	StageTime                   time.Time
	Level, Verb                 string
	User                        string
	UserGroups                  []string
	Namespace                   string
	APIGroup, APIVersion        string
	Resource, Subresource, Name string
	Code                        int32
	SourceIP, UserAgent         string
	Body                        []byte
}

func (s *Store) InsertAudit(ctx context.Context, rows []AuditRow) error {
	return errors.New("audit store not merged")
}
