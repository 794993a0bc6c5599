package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// fixedWidth is the in-memory width of the events table's numeric columns.
var fixedWidth = map[string]int64{"UInt8": 1, "UInt32": 4, "Int32": 4, "DateTime": 4, "UInt64": 8, "Int64": 8}

// rowBytesExpr is the SQL form of RowBytes: the sum of every String column's
// length plus the fixed width of the numeric columns. It is built from the
// column list, so a new column is counted without anyone remembering to.
func rowBytesExpr() string {
	var fixed int64
	var parts []string
	for _, c := range columns {
		if c.typ == "String" {
			parts = append(parts, "length("+c.name+")")
			continue
		}
		w, ok := fixedWidth[c.typ]
		if !ok {
			panic("BUG: no width for column type " + c.typ)
		}
		fixed += w
	}
	return strconv.FormatInt(fixed, 10) + " + " + strings.Join(parts, " + ")
}

// RowBytes estimates the storage a row takes against a tenant's quota: the
// bytes of its values as ClickHouse holds them uncompressed (string lengths
// plus the fixed width of numbers), without per-value framing. It equals, to
// the byte, what PartitionUsage sums for the same row, so a write can be
// charged before it reaches ClickHouse and measured after.
func RowBytes(r *Row) int64 {
	n := int64(len(r.ScopeType) + len(r.ScopeName) + len(r.Namespace) + len(r.Name) + len(r.UID) +
		len(r.InvolvedKind) + len(r.InvolvedNamespace) + len(r.InvolvedName) + len(r.InvolvedUID) +
		len(r.InvolvedAPIVersion) + len(r.InvolvedResourceVersion) + len(r.InvolvedFieldPath) +
		len(r.Reason) + len(r.Message) + len(r.Type) + len(r.SourceComponent) + len(r.SourceHost) +
		len(r.ReportingController) + len(r.ReportingInstance) + len(r.Action) +
		len(r.RelatedKind) + len(r.RelatedNamespace) + len(r.RelatedName) + len(r.Rest))
	return n + rowFixedBytes
}

// rowFixedBytes is the numeric part of RowBytes: seq, op, last_ts,
// last_ts_nanos, count and lease.
const rowFixedBytes = 8 + 1 + 4 + 4 + 4 + 8

// Partition describes one day partition of a RetentionTable from its active
// parts.
type Partition struct {
	// ID is the partition's ID, the day as YYYYMMDD in the server's time zone.
	ID string
	// Rows counts the stored rows (every state, before merges fold exact
	// duplicates).
	Rows uint64
	// MaxTime is the latest time in the partition (last_ts, request_ts;
	// whole seconds).
	MaxTime time.Time
	// MutationVersion changes whenever a mutation (such as a retention
	// DELETE) has rewritten a part of the partition, and not on inserts or
	// merges: it is the highest data version among parts whose data version
	// differs from their first block number, which only mutations produce.
	MutationVersion uint64
}

// partitionsSQL sums the parts of one replica per shard (systemTable).
func (s *Store) partitionsSQL() string {
	return "SELECT partition_id, sum(rows), max(max_time), " +
		"max(if(data_version != toUInt64(min_block_number), data_version, toUInt64(0))) " +
		"FROM " + s.systemTable("parts") + " WHERE active AND database = ? AND table = ? " +
		"GROUP BY partition_id ORDER BY partition_id"
}

// Partitions lists the events table's partitions, oldest first.
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	return s.eventsRetention().Partitions(ctx)
}

// Partitions lists the table's partitions, oldest first.
func (t *RetentionTable) Partitions(ctx context.Context) ([]Partition, error) {
	var out []Partition
	err := t.s.eachRow(ctx, t.s.partitionsSQL(), []any{t.s.cfg.Database, t.s.dataTableName(t.name)}, func(rows driver.Rows) error {
		var p Partition
		if err := rows.Scan(&p.ID, &p.Rows, &p.MaxTime, &p.MutationVersion); err != nil {
			return err
		}
		p.MaxTime = p.MaxTime.UTC()
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", t.name, err)
	}
	return out, nil
}

// ScopeUsage is what one tenant's rows in a partition take (RowBytes summed).
type ScopeUsage struct {
	Scope scope.Scope
	Rows  uint64
	Bytes uint64
}

// PartitionUsage sums RowBytes per scope over the rows of partition id whose
// sequence is above afterSeq (0: every row), and returns the highest
// sequence it counted. One query reads one snapshot of the parts, so the sums
// and the sequence agree; the partition condition prunes every other day.
func (s *Store) PartitionUsage(ctx context.Context, id string, afterSeq uint64) ([]ScopeUsage, uint64, error) {
	day, err := partitionDay(id)
	if err != nil {
		return nil, 0, err
	}
	q, args := s.partitionUsageSQL(day, afterSeq)
	var out []ScopeUsage
	var maxSeq uint64
	err = s.eachRow(ctx, q, args, func(rows driver.Rows) error {
		var u ScopeUsage
		var seq uint64
		if err := rows.Scan(&u.Scope.Type, &u.Scope.Name, &u.Rows, &u.Bytes, &seq); err != nil {
			return err
		}
		maxSeq = max(maxSeq, seq)
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("measure partition %s: %w", id, err)
	}
	return out, maxSeq, nil
}

func (s *Store) partitionUsageSQL(day uint32, afterSeq uint64) (string, []any) {
	return "SELECT scope_type, scope_name, count(), sum(" + rowBytesExpr() + "), max(seq) FROM " + s.table() +
		" WHERE toYYYYMMDD(last_ts) = ? AND seq > ? GROUP BY scope_type, scope_name ORDER BY scope_type, scope_name", []any{day, afterSeq}
}

// partitionDay checks that id is a day partition's ID and returns it as the
// number toYYYYMMDD yields; it is also what keeps IDs out of SQL text unchecked.
func partitionDay(id string) (uint32, error) {
	if len(id) != 8 {
		return 0, fmt.Errorf("partition ID %q is not a day (YYYYMMDD)", id)
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("partition ID %q is not a day (YYYYMMDD)", id)
	}
	return uint32(n), nil
}
