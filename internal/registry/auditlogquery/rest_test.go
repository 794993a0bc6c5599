package auditlogquery

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/registry/eventquery"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	v1alpha1 "github.com/eventpipe/eventpipe/pkg/apis/activity/v1alpha1"
)

var (
	now   = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	alpha = scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta  = scope.Scope{Type: scope.TypeProject, Name: "beta"}
)

// fakeIndex records the queries it is asked and answers with recs (or err).
// The store's own behaviour is tested against real ClickHouse in
// internal/store/clickhouse; here only what the registry asks and does
// with the answer matters.
type fakeIndex struct {
	asked []chstore.AuditQuery
	recs  []chstore.AuditRecord
	err   error
}

func (f *fakeIndex) QueryAudit(_ context.Context, q chstore.AuditQuery, _ chstore.Limits) ([]chstore.AuditRecord, error) {
	f.asked = append(f.asked, q)
	return f.recs, f.err
}

type fixedScope struct{ sc *scope.Scope }

func (f *fixedScope) ReadScope(context.Context) (*scope.Scope, error) { return f.sc, nil }

type watermark struct{ atomic.Uint64 }

func record(id string, ago time.Duration) chstore.AuditRecord {
	t := now.Add(-ago)
	row := chstore.AuditRow{ScopeType: alpha.Type, ScopeName: alpha.Name, AuditID: id, Stage: "ResponseComplete", Seq: 5,
		RequestTime: t.Truncate(time.Second), RequestNanos: uint32(t.Nanosecond()), StageTime: t.Truncate(time.Second),
		Level: "Metadata", Verb: "delete", User: "bob", Resource: "configmaps", Namespace: "prod", Name: "app-config", Code: 200,
		Body: []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"` + id +
			`","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/prod/configmaps/app-config","verb":"delete",` +
			`"user":{"username":"bob"},"objectRef":{"resource":"configmaps","namespace":"prod","name":"app-config"},` +
			`"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"` + t.Format(metav1.RFC3339Micro) +
			`","stageTimestamp":"` + t.Format(metav1.RFC3339Micro) + `"}`)}
	return chstore.AuditRecord{AuditRow: row, Key: chstore.AuditKey{RequestTime: t, Scope: alpha, AuditID: id, Stage: "ResponseComplete"}}
}

type env struct {
	idx    *fakeIndex
	scopes *fixedScope
	wm     *watermark
	rest   *REST
	signer *eventquery.Signer
}

func newEnv(t *testing.T) *env {
	signer, err := eventquery.NewSigner([]byte("test-key-test-key-test-key-test!"), time.Hour)
	require.NoError(t, err)
	e := &env{idx: &fakeIndex{}, scopes: &fixedScope{sc: &alpha}, wm: &watermark{}, signer: signer}
	e.wm.Store(42)
	clock := now
	e.rest = NewREST(Deps{Index: e.idx, Watermark: e.wm, Scopes: e.scopes,
		Window: eventquery.FixedQueryWindow{Window: 7 * 24 * time.Hour, Tier: "Free"}, Signer: signer,
		Limits: chstore.Limits{MaxRowsToRead: 1000, MaxExecutionTime: time.Second}, Now: func() time.Time { return clock }})
	return e
}

func (e *env) create(spec v1alpha1.AuditLogQuerySpec) (*v1alpha1.AuditLogQuery, error) {
	obj, err := e.rest.Create(context.Background(), &v1alpha1.AuditLogQuery{ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: spec}, nil, nil)
	if err != nil {
		return nil, err
	}
	return obj.(*v1alpha1.AuditLogQuery), nil
}

func strp(s string) *string { return &s }

func TestCreateAsksTheIndexAndAnswers(t *testing.T) {
	e := newEnv(t)
	e.idx.recs = []chstore.AuditRecord{record("a2", time.Minute), record("a1", 2*time.Minute)}
	got, err := e.create(v1alpha1.AuditLogQuerySpec{StartTime: "now-2h", EndTime: "2026-12-07T11:30:00Z", User: "bob",
		Verbs: []string{"delete", "patch"}, Stages: []string{"ResponseComplete"}, Resource: "deployments", APIGroup: strp(""),
		Subresource: strp("scale"), Namespace: "prod", Name: "web", ResponseCodes: []string{"403", "5xx"}})
	require.NoError(t, err)
	require.Len(t, e.idx.asked, 1)
	require.Equal(t, chstore.AuditQuery{Scope: &alpha, Start: now.Add(-2 * time.Hour), End: now.Add(-30 * time.Minute), AtSeq: 42,
		User: "bob", Verbs: []string{"delete", "patch"}, Stages: []string{"ResponseComplete"}, Resource: "deployments",
		APIGroup: strp(""), Subresource: strp("scale"), Namespace: strp("prod"), Name: "web",
		Codes: []chstore.CodeRange{{Min: 403, Max: 403}, {Min: 500, Max: 599}}, Limit: DefaultLimit + 1}, e.idx.asked[0])
	require.Equal(t, "42", got.Status.ResourceVersion)
	require.Equal(t, now.Add(-2*time.Hour), got.Status.EffectiveStartTime.Time)
	require.Equal(t, now.Add(-30*time.Minute), got.Status.EffectiveEndTime.Time)
	require.Empty(t, got.Status.Continue, "one page")
	require.Len(t, got.Status.Results, 2)
	ev := got.Status.Results[0]
	require.Equal(t, "audit.k8s.io/v1", ev.APIVersion)
	require.Equal(t, "a2", string(ev.AuditID))
	require.Equal(t, "/api/v1/namespaces/prod/configmaps/app-config", ev.RequestURI, "the stored body as sent")
	require.True(t, now.Add(-time.Minute).Equal(ev.RequestReceivedTimestamp.Time))
	require.False(t, got.CreationTimestamp.IsZero())

	// Namespace empty: every namespace; apiGroup and subresource omitted: any.
	e.idx.recs = nil
	_, err = e.create(v1alpha1.AuditLogQuerySpec{StartTime: "now-1h", EndTime: "now"})
	require.NoError(t, err)
	q := e.idx.asked[1]
	require.Nil(t, q.Namespace)
	require.Nil(t, q.APIGroup)
	require.Nil(t, q.Subresource)
}

// TestValidation: each bad spec answers 422 naming the field and what is
// allowed; every problem is reported, not the first.
func TestValidation(t *testing.T) {
	ok := v1alpha1.AuditLogQuerySpec{StartTime: "now-1h", EndTime: "now"}
	for _, c := range []struct {
		name   string
		change func(*v1alpha1.AuditLogQuerySpec)
		want   []string // "field: text" fragments
	}{
		{"no times", func(s *v1alpha1.AuditLogQuerySpec) { s.StartTime, s.EndTime = "", "" },
			[]string{"spec.startTime: Required value", "spec.endTime: Required value"}},
		{"bad time", func(s *v1alpha1.AuditLogQuerySpec) { s.StartTime = "yesterday" }, []string{`spec.startTime: Invalid value: "yesterday": must be`}},
		{"future", func(s *v1alpha1.AuditLogQuerySpec) { s.EndTime = "2027-01-01T00:00:00Z" }, []string{"spec.endTime", "must not be in the future"}},
		{"end before start", func(s *v1alpha1.AuditLogQuerySpec) { s.StartTime, s.EndTime = "now-1h", "now-2h" }, []string{"spec.endTime", "must be after spec.startTime"}},
		{"beyond the tier", func(s *v1alpha1.AuditLogQuerySpec) { s.StartTime = "now-8d" },
			[]string{"spec.startTime", `tier "Free" may query the last 1w`}},
		{"limit", func(s *v1alpha1.AuditLogQuerySpec) { s.Limit = 1001 }, []string{"spec.limit", "must be from 1 to 1000"}},
		{"negative limit", func(s *v1alpha1.AuditLogQuerySpec) { s.Limit = -1 }, []string{"spec.limit"}},
		{"verb", func(s *v1alpha1.AuditLogQuerySpec) { s.Verbs = []string{"get", "DELETE"} }, []string{"spec.verbs[1]", "lower-case Kubernetes verb"}},
		{"too many verbs", func(s *v1alpha1.AuditLogQuerySpec) { s.Verbs = make([]string, 21) }, []string{"spec.verbs: Too many: 21: must have at most 20 items"}},
		{"stage", func(s *v1alpha1.AuditLogQuerySpec) { s.Stages = []string{"Done"} }, []string{`spec.stages[0]: Unsupported value: "Done"`, `"ResponseComplete"`}},
		{"resource", func(s *v1alpha1.AuditLogQuerySpec) { s.Resource = "Deployments" }, []string{"spec.resource", "RFC 1123 label"}},
		{"group", func(s *v1alpha1.AuditLogQuerySpec) { s.APIGroup = strp("Apps!") }, []string{"spec.apiGroup", `use "" for the core group`}},
		{"subresource without resource", func(s *v1alpha1.AuditLogQuerySpec) { s.Subresource = strp("scale") },
			[]string{"spec.resource: Required value: spec.subresource needs the resource"}},
		{"subresource", func(s *v1alpha1.AuditLogQuerySpec) { s.Resource, s.Subresource = "pods", strp("a/b") }, []string{"spec.subresource"}},
		{"namespace", func(s *v1alpha1.AuditLogQuerySpec) { s.Namespace = "Prod" }, []string{"spec.namespace"}},
		{"name", func(s *v1alpha1.AuditLogQuerySpec) { s.Name = strings.Repeat("n", 254) }, []string{"spec.name: Too long"}},
		{"user", func(s *v1alpha1.AuditLogQuerySpec) { s.User = strings.Repeat("u", 1025) }, []string{"spec.user: Too long"}},
		{"code", func(s *v1alpha1.AuditLogQuerySpec) { s.ResponseCodes = []string{"404", "6xx", "99"} },
			[]string{`spec.responseCodes[1]: Invalid value: "6xx"`, `spec.responseCodes[2]`, `from "1xx" to "5xx"`}},
		{"all at once", func(s *v1alpha1.AuditLogQuerySpec) { s.Limit, s.Verbs, s.Namespace = 5000, []string{"x y"}, "-" },
			[]string{"spec.limit", "spec.verbs[0]", "spec.namespace"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			spec := ok
			c.change(&spec)
			_, err := e.create(spec)
			require.Error(t, err)
			require.True(t, apierrors.IsInvalid(err), "422, got %v", err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
			require.Empty(t, e.idx.asked, "nothing is read for a bad query")
		})
	}
}

func TestPagesAndCursorMisuse(t *testing.T) {
	e := newEnv(t)
	spec := v1alpha1.AuditLogQuerySpec{StartTime: "now-1d", EndTime: "now", User: "bob", Limit: 2}
	e.idx.recs = []chstore.AuditRecord{record("a3", time.Minute), record("a2", 2*time.Minute), record("a1", 3*time.Minute)}
	first, err := e.create(spec)
	require.NoError(t, err)
	require.Len(t, first.Status.Results, 2, "limit+1 asked, limit returned")
	require.Equal(t, 3, e.idx.asked[0].Limit)
	require.NotEmpty(t, first.Status.Continue)

	// The next page reads after the last item, at the first page's
	// watermark and window, although both have moved since.
	e.wm.Store(99)
	next := spec
	next.Continue = first.Status.Continue
	e.idx.recs = e.idx.recs[2:]
	second, err := e.create(next)
	require.NoError(t, err)
	asked := e.idx.asked[1]
	require.Equal(t, &chstore.AuditKey{RequestTime: now.Add(-2 * time.Minute), Scope: alpha, AuditID: "a2", Stage: "ResponseComplete"}, asked.After)
	require.EqualValues(t, 42, asked.AtSeq)
	require.Equal(t, "42", second.Status.ResourceVersion)
	require.Equal(t, first.Status.EffectiveStartTime, second.Status.EffectiveStartTime)
	require.Empty(t, second.Status.Continue)

	for name, c := range map[string]struct {
		change func(*v1alpha1.AuditLogQuerySpec)
		scope  *scope.Scope
		want   string
	}{
		"other user":      {change: func(s *v1alpha1.AuditLogQuerySpec) { s.User = "alice" }, want: "different query or caller"},
		"other verbs":     {change: func(s *v1alpha1.AuditLogQuerySpec) { s.Verbs = []string{"get"} }, want: "different query or caller"},
		"other code":      {change: func(s *v1alpha1.AuditLogQuerySpec) { s.ResponseCodes = []string{"4xx"} }, want: "different query or caller"},
		"core group set":  {change: func(s *v1alpha1.AuditLogQuerySpec) { s.APIGroup = strp("") }, want: "different query or caller"},
		"other window":    {change: func(s *v1alpha1.AuditLogQuerySpec) { s.StartTime = "now-2d" }, want: "different query or caller"},
		"other namespace": {change: func(s *v1alpha1.AuditLogQuerySpec) { s.Namespace = "prod" }, want: "different query or caller"},
		"other tenant":    {change: func(*v1alpha1.AuditLogQuerySpec) {}, scope: &beta, want: "different query or caller"},
		"platform caller": {change: func(*v1alpha1.AuditLogQuerySpec) {}, scope: nil, want: "different query or caller"},
		"tampered":        {change: func(s *v1alpha1.AuditLogQuerySpec) { s.Continue = "x" + s.Continue[1:] }, want: "malformed or was not issued"},
	} {
		t.Run(name, func(t *testing.T) {
			e2 := newEnv(t)
			e2.scopes.sc = &alpha
			if name == "other tenant" || name == "platform caller" {
				e2.scopes.sc = c.scope
			}
			s := next
			c.change(&s)
			_, err := e2.create(s)
			require.True(t, apierrors.IsInvalid(err), "422, got %v", err)
			require.Contains(t, err.Error(), "spec.continue")
			require.Contains(t, err.Error(), c.want)
			require.Empty(t, e2.idx.asked)
		})
	}

	// An EventQuery token with the same window is not an AuditLogQuery's.
	evTok := e.signer.Encode(eventquery.Binding{Kind: "EventQuery", StartTime: spec.StartTime, EndTime: spec.EndTime, Scope: &alpha},
		eventquery.Cursor{IssuedAt: now})
	s := spec
	s.Continue = evTok
	_, err = e.create(s)
	require.True(t, apierrors.IsInvalid(err), "422, got %v", err)

	// Expired: 410 Gone.
	e3 := newEnv(t)
	e3.rest.d.Now = func() time.Time { return now.Add(61 * time.Minute) }
	_, err = e3.create(next)
	require.True(t, apierrors.IsResourceExpired(err) || apierrors.IsGone(err), "410, got %v", err)
}

func TestStoreErrors(t *testing.T) {
	e := newEnv(t)
	spec := v1alpha1.AuditLogQuerySpec{StartTime: "now-1d", EndTime: "now"}
	e.idx.err = fmt.Errorf("query audit records: %w: read 2000 rows", chstore.ErrTooManyRows)
	_, err := e.create(spec)
	require.True(t, apierrors.IsInvalid(err), "422, got %v", err)
	require.Contains(t, err.Error(), "spec.startTime")
	require.Contains(t, err.Error(), "spec.user, spec.verbs")
	e.idx.err = fmt.Errorf("query audit records: %w", chstore.ErrQueryTimeout)
	_, err = e.create(spec)
	require.True(t, apierrors.IsTooManyRequests(err), "429, got %v", err)
	e.idx.err = fmt.Errorf("connection refused")
	_, err = e.create(spec)
	require.True(t, apierrors.IsServiceUnavailable(err), "503, got %v", err)
}

// TestEventFromColumns: a body that does not decode still gives the
// record, from its indexed columns.
func TestEventFromColumns(t *testing.T) {
	r := record("a1", time.Minute)
	r.Body = []byte("{not json")
	r.SourceIP = "10.0.0.7,192.168.1.2"
	ev := Event(&r.AuditRow)
	require.Equal(t, "a1", string(ev.AuditID))
	require.Equal(t, "bob", ev.User.Username)
	require.Equal(t, "configmaps", ev.ObjectRef.Resource)
	require.EqualValues(t, 200, ev.ResponseStatus.Code)
	require.Equal(t, []string{"10.0.0.7", "192.168.1.2"}, ev.SourceIPs)
	require.True(t, now.Add(-time.Minute).Equal(ev.RequestReceivedTimestamp.Time))
	require.Equal(t, "Event", ev.Kind)
}

func TestParseCode(t *testing.T) {
	for in, want := range map[string]chstore.CodeRange{"404": {Min: 404, Max: 404}, "100": {Min: 100, Max: 100}, "599": {Min: 599, Max: 599}, "1xx": {Min: 100, Max: 199}, "5xx": {Min: 500, Max: 599}} {
		got, err := ParseCode(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "99", "600", "6xx", "0xx", "4XX", "+40", "-40", "4x4", "40", "4040", " 40"} {
		_, err := ParseCode(in)
		require.Error(t, err, in)
	}
}

// FuzzParseCode: any input either fails or yields a range inside 100–599
// that says what it read: a code stands for itself, a class for its
// hundred.
func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"404", "5xx", "6xx", "", "+99", "1e2", "0x1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			return
		}
		if c.Min < 100 || c.Max > 599 || c.Min > c.Max {
			t.Fatalf("%q gave %+v", s, c)
		}
		if strings.HasSuffix(s, "xx") {
			if c.Max-c.Min != 99 || fmt.Sprintf("%dxx", c.Min/100) != s {
				t.Fatalf("%q gave %+v", s, c)
			}
		} else if fmt.Sprint(c.Min) != s || c.Min != c.Max {
			t.Fatalf("%q gave %+v", s, c)
		}
	})
}
