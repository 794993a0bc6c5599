package clickhouse

import (
	"time"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// auditNow is the fixed "now" of the audit fixture: a sub-second part, so
// window bounds fall inside a second.
var auditNow = time.Date(2026, 12, 1, 12, 0, 0, 500_000_000, time.UTC)

var (
	auditAlpha = scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	auditBeta  = scope.Scope{Type: scope.TypeProject, Name: "beta"}
)

// auditFixture is what both halves of the version matrix store: alpha's
// requests, one of beta's, retried copies under other sequences, an exact
// re-insert, two records in one AUDIT message (one sequence), two requests
// received in the same nanosecond, and a record above the watermark 100.
func auditFixture() []AuditRow {
	row := func(sc scope.Scope, id, stage string, seq uint64, ago time.Duration, user, verb, group, res, sub, ns, name string, code int32) AuditRow {
		t := auditNow.Add(-ago)
		return AuditRow{ScopeType: sc.Type, ScopeName: sc.Name, AuditID: id, Stage: stage, Seq: seq,
			RequestTime: t.Truncate(time.Second), RequestNanos: uint32(t.Nanosecond()), StageTime: t.Add(time.Millisecond).Truncate(time.Second),
			Level: "RequestResponse", Verb: verb, User: user, UserGroups: []string{"system:authenticated", "team-" + user},
			Namespace: ns, APIGroup: group, APIVersion: "v1", Resource: res, Subresource: sub, Name: name, Code: code,
			SourceIP: "10.0.0.1", UserAgent: "kubectl/v1.37.2", Body: []byte(`{"auditID":"` + id + `","stage":"` + stage + `"}`)}
	}
	rc, rr := "ResponseComplete", "RequestReceived"
	return []AuditRow{
		row(auditAlpha, "a1", rr, 10, 5*time.Minute, "alice", "create", "apps", "deployments", "", "prod", "web", 0),
		row(auditAlpha, "a1", rc, 11, 5*time.Minute, "alice", "create", "apps", "deployments", "", "prod", "web", 201),
		row(auditAlpha, "a2", rc, 20, 4*time.Minute, "bob", "delete", "", "configmaps", "", "prod", "app-config", 200),
		// Two records of one AUDIT message share its sequence.
		row(auditAlpha, "a3", rc, 30, 3*time.Minute, "carol", "get", "", "secrets", "", "prod", "db", 403),
		row(auditAlpha, "a4", rc, 30, 2*time.Minute, "alice", "patch", "apps", "deployments", "scale", "prod", "web", 200),
		// a5 and a6 were received in the same nanosecond: audit ID orders them.
		row(auditAlpha, "a6", rc, 40, 90*time.Second, "dave", "update", "", "configmaps", "", "dev", "x", 409),
		row(auditAlpha, "a5", rc, 41, 90*time.Second, "dave", "update", "", "configmaps", "", "dev", "y", 200),
		row(auditAlpha, "a7", rc, 50, time.Minute, "alice", "list", "", "namespaces", "", "", "", 500),
		row(auditBeta, "b1", rc, 60, 3*time.Minute, "alice", "create", "apps", "deployments", "", "prod", "web", 201),
		// Retries of a batch: the same records under later sequences.
		row(auditAlpha, "a1", rc, 70, 5*time.Minute, "alice", "create", "apps", "deployments", "", "prod", "web", 201),
		row(auditAlpha, "a2", rc, 71, 4*time.Minute, "bob", "delete", "", "configmaps", "", "prod", "app-config", 200),
		// An exact re-insert.
		row(auditAlpha, "a3", rc, 30, 3*time.Minute, "carol", "get", "", "secrets", "", "prod", "db", 403),
		// Above the watermark.
		row(auditAlpha, "a8", rc, 101, 30*time.Second, "alice", "delete", "", "pods", "", "prod", "p", 200),
	}
}

// auditCase is one query of the matrix and the records it must return, as
// "auditID/stage" in order.
type auditCase struct {
	name string
	q    AuditQuery
	want []string
}

func strp(s string) *string { return &s }

// auditCases are the queries both halves of the matrix run on the fixture.
func auditCases() []auditCase {
	all := func(q AuditQuery) AuditQuery {
		if q.Scope == nil {
			q.Scope = &auditAlpha
		}
		if q.Start.IsZero() {
			q.Start = auditNow.Add(-time.Hour)
		}
		if q.End.IsZero() {
			q.End = auditNow
		}
		if q.AtSeq == 0 {
			q.AtSeq = 100
		}
		if q.Limit == 0 {
			q.Limit = 100
		}
		return q
	}
	k := func(ago time.Duration, sc scope.Scope, id, stage string) *AuditKey {
		return &AuditKey{RequestTime: auditNow.Add(-ago), Scope: sc, AuditID: id, Stage: stage}
	}
	alphaAll := []string{"a7/ResponseComplete", "a5/ResponseComplete", "a6/ResponseComplete", "a4/ResponseComplete",
		"a3/ResponseComplete", "a2/ResponseComplete", "a1/RequestReceived", "a1/ResponseComplete"}
	cases := []auditCase{
		{"each record once, newest first", all(AuditQuery{}), alphaAll},
		{"above the watermark too", all(AuditQuery{AtSeq: 1000}), append([]string{"a8/ResponseComplete"}, alphaAll...)},
		{"nothing committed", all(AuditQuery{AtSeq: 9}), nil},
		{"another tenant", all(AuditQuery{Scope: &auditBeta}), []string{"b1/ResponseComplete"}},
		{"user", all(AuditQuery{User: "alice"}), []string{"a7/ResponseComplete", "a4/ResponseComplete", "a1/RequestReceived", "a1/ResponseComplete"}},
		{"verbs", all(AuditQuery{Verbs: []string{"delete", "get"}}), []string{"a3/ResponseComplete", "a2/ResponseComplete"}},
		{"stage", all(AuditQuery{Stages: []string{"RequestReceived"}}), []string{"a1/RequestReceived"}},
		{"resource and core group", all(AuditQuery{Resource: "configmaps", APIGroup: strp("")}), []string{"a5/ResponseComplete", "a6/ResponseComplete", "a2/ResponseComplete"}},
		{"resource in another group", all(AuditQuery{Resource: "configmaps", APIGroup: strp("apps")}), nil},
		{"subresource", all(AuditQuery{Resource: "deployments", Subresource: strp("scale")}), []string{"a4/ResponseComplete"}},
		{"no subresource", all(AuditQuery{Resource: "deployments", Subresource: strp(""), Stages: []string{"ResponseComplete"}}), []string{"a1/ResponseComplete"}},
		{"cluster-scoped", all(AuditQuery{Namespace: strp("")}), []string{"a7/ResponseComplete"}},
		{"namespace and name", all(AuditQuery{Namespace: strp("prod"), Name: "web"}), []string{"a4/ResponseComplete", "a1/RequestReceived", "a1/ResponseComplete"}},
		{"code classes", all(AuditQuery{Codes: []CodeRange{{400, 499}, {500, 599}}}), []string{"a7/ResponseComplete", "a6/ResponseComplete", "a3/ResponseComplete"}},
		{"exact code", all(AuditQuery{Codes: []CodeRange{{201, 201}}}), []string{"a1/ResponseComplete"}},
		// The window is exact to the nanosecond: start inclusive, end exclusive.
		{"window", all(AuditQuery{Start: auditNow.Add(-4 * time.Minute), End: auditNow.Add(-90 * time.Second)}),
			[]string{"a4/ResponseComplete", "a3/ResponseComplete", "a2/ResponseComplete"}},
		{"page", all(AuditQuery{Limit: 3}), alphaAll[:3]},
		{"page inside one message", all(AuditQuery{Limit: 1, After: k(90*time.Second, auditAlpha, "a6", "ResponseComplete")}), []string{"a4/ResponseComplete"}},
		{"after a tie", all(AuditQuery{After: k(90*time.Second, auditAlpha, "a5", "ResponseComplete"), Limit: 2}), []string{"a6/ResponseComplete", "a4/ResponseComplete"}},
		{"after a stage", all(AuditQuery{After: k(5*time.Minute, auditAlpha, "a1", "RequestReceived")}), []string{"a1/ResponseComplete"}},
	}
	every := all(AuditQuery{User: "alice", Verbs: []string{"create"}, Stages: []string{"ResponseComplete"}})
	every.Scope = nil
	return append(cases, auditCase{"every scope", every, []string{"b1/ResponseComplete", "a1/ResponseComplete"}})
}

// AuditFixture and AuditCases give the 18.16 tests (package
// clickhouse_test) the matrix's data and queries.
func AuditFixture() []AuditRow { return auditFixture() }

// AuditCase is auditCase for the external tests.
type AuditCase struct {
	Name string
	Q    AuditQuery
	Want []string
}

// AuditCases returns auditCases for the external tests.
func AuditCases() []AuditCase {
	var out []AuditCase
	for _, c := range auditCases() {
		out = append(out, AuditCase{Name: c.name, Q: c.q, Want: c.want})
	}
	return out
}
