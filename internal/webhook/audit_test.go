package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/eventpipe/eventpipe/internal/audit"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// auditItem is one record as kube-apiserver's webhook writes it into an
// EventList (no kind or apiVersion of its own).
func auditItem(id, stage string) string {
	return fmt.Sprintf(`{"level":"Metadata","auditID":%q,"stage":%q,"requestURI":"/api/v1/namespaces/prod/configmaps","verb":"create",`+
		`"user":{"username":"alice","groups":["system:authenticated"]},"sourceIPs":["127.0.0.1"],"userAgent":"kubectl/v1.37.2",`+
		`"objectRef":{"resource":"configmaps","namespace":"prod","name":"app","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},`+
		`"requestReceivedTimestamp":"2026-12-07T10:00:00.123456Z","stageTimestamp":"2026-12-07T10:00:00.130000Z"}`, id, stage)
}

func auditList(items ...string) string {
	return `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + strings.Join(items, ",") + `]}`
}

func TestParseAudit(t *testing.T) {
	good := auditItem("a1", "ResponseComplete")
	cases := []struct {
		name string
		body string
		errs []string // per item, "" for a good one
		err  string
	}{
		{name: "webhook batch", body: auditList(good, auditItem("a2", "ResponseStarted")), errs: []string{"", ""}},
		{name: "single event", body: `{"kind":"Event","apiVersion":"audit.k8s.io/v1",` + good[1:], errs: []string{""}},
		{name: "array", body: "[" + good + "," + auditItem("a3", "Panic") + "]", errs: []string{"", ""}},
		{name: "log file lines", body: good + "\n" + auditItem("a4", "ResponseComplete") + "\n", errs: []string{"", ""}},
		{name: "bad items do not sink good ones", body: auditList(good,
			strings.Replace(good, `"auditID":"a1",`, "", 1),
			strings.Replace(good, `"stage":"ResponseComplete"`, `"stage":"Done"`, 1),
			strings.Replace(good, `"verb":"create",`, "", 1),
			strings.Replace(good, `"requestReceivedTimestamp":"2026-12-07T10:00:00.123456Z",`, "", 1),
			`{"kind":"Pod","apiVersion":"v1"}`,
			`"not an object"`,
			strings.Replace(good, `"auditID":"a1"`, `"auditID":"a 1"`, 1)),
			errs: []string{"",
				"items[1].auditID: Required value",
				`items[2].stage: Unsupported value: "Done": supported values: "RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"`,
				"items[3].verb: Required value",
				"items[4].requestReceivedTimestamp: Required value",
				`items[5].kind: Unsupported value: "Pod"`,
				"items[6]: Invalid value",
				`items[7].auditID: Invalid value: "a 1": must be printable ASCII without spaces`}},
		{name: "old list version", body: `{"kind":"EventList","apiVersion":"audit.k8s.io/v1beta1","items":[` + good + `]}`,
			errs: []string{`items[0].apiVersion: Unsupported value: "audit.k8s.io/v1beta1": supported values: "audit.k8s.io/v1"`}},
		{name: "empty", body: " ", err: "the body is empty"},
		{name: "not JSON", body: "{", err: "the body is not valid JSON"},
		{name: "too many", body: auditList(good, good, good, good), err: "more than 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			items, err := ParseAudit([]byte(c.body), false, 3+len(c.errs))
			if c.name == "too many" {
				items, err = ParseAudit([]byte(c.body), false, 3)
			}
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Len(t, items, len(c.errs))
			for i, want := range c.errs {
				if want == "" {
					require.Nil(t, items[i].Err, "item %d", i)
					require.NotEmpty(t, items[i].Event.AuditID)
					require.Equal(t, "audit.k8s.io/v1", items[i].Event.APIVersion)
					continue
				}
				require.NotNil(t, items[i].Err, "item %d", i)
				require.Contains(t, items[i].Err.Error(), want, "item %d", i)
			}
		})
	}
}

type fixedScope struct{ sc scope.Scope }

func (f fixedScope) CallerScope(context.Context) (scope.Scope, error) { return f.sc, nil }

func postAudit(t *testing.T, h http.Handler, body string) (int, metav1.Status) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, AuditPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var st metav1.Status
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &st), rec.Body.String())
	return rec.Code, st
}

// TestAuditHandler posts batches to the receiver on a real JetStream: a
// resent batch stores nothing twice, bad items are refused one by one, an
// oversize record is kept without its objects, an all-bad batch is 422.
func TestAuditHandler(t *testing.T) {
	ns := eventtest.Stream(t)
	ctx := context.Background()
	require.NoError(t, audit.Ensure(ctx, ns.JS, eventlog.DefaultConfig()))
	cfg := DefaultAuditConfig()
	cfg.MaxItemBytes = 2048
	sc := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	h := NewAudit(audit.NewPublisher(ns.JS), fixedScope{sc}, cfg)
	count := func() uint64 {
		s, err := ns.JS.Stream(ctx, audit.StreamName)
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		return info.State.Msgs
	}

	batch := auditList(auditItem("a1", "ResponseComplete"), auditItem("a2", "ResponseComplete"), `{"verb":"get"}`)
	code, st := postAudit(t, h, batch)
	require.Equal(t, http.StatusAccepted, code, st.Message)
	require.Equal(t, "stored 2 of 3 audit events; 1 refused", st.Message)
	require.Len(t, st.Details.Causes, 1)
	require.Equal(t, "items[2].auditID", st.Details.Causes[0].Field)
	require.EqualValues(t, 2, count())

	// kube-apiserver resends the batch (its answer was lost): nothing new.
	code, _ = postAudit(t, h, batch)
	require.Equal(t, http.StatusAccepted, code)
	require.EqualValues(t, 2, count())
	// Another stage of the same request is another record.
	code, _ = postAudit(t, h, auditList(auditItem("a1", "ResponseStarted")))
	require.Equal(t, http.StatusAccepted, code)
	require.EqualValues(t, 3, count())

	// Too large: kept without the request and response objects.
	big := strings.Replace(auditItem("a3", "ResponseComplete"), `"level":"Metadata"`,
		`"level":"RequestResponse","requestObject":{"data":{"x":"`+strings.Repeat("y", 4000)+`"}}`, 1)
	code, st = postAudit(t, h, auditList(big))
	require.Equal(t, http.StatusAccepted, code, st.Message)
	require.EqualValues(t, 4, count())
	s, err := ns.JS.Stream(ctx, audit.StreamName)
	require.NoError(t, err)
	m, err := s.GetMsg(ctx, 4)
	require.NoError(t, err)
	rec, err := audit.Decode(m.Subject, m.Data, 4, m.Time)
	require.NoError(t, err)
	require.Equal(t, sc, rec.Scope)
	require.Nil(t, rec.Event.RequestObject)
	require.Contains(t, rec.Event.Annotations[TruncatedAnnotation], "requestObject and responseObject dropped")

	// Nothing usable: 422 naming each item; the wrong method: 405.
	code, st = postAudit(t, h, auditList(`{"verb":"get"}`))
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Contains(t, st.Message, "items[0].auditID: Required value")
	req := httptest.NewRequest(http.MethodGet, AuditPath, nil)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	require.Equal(t, http.StatusMethodNotAllowed, rr.Code)
	// An unreadable body: 400; a foreign media type: 415.
	code, _ = postAudit(t, h, "{")
	require.Equal(t, http.StatusBadRequest, code)
	req = httptest.NewRequest(http.MethodPost, AuditPath, strings.NewReader(batch))
	req.Header.Set("Content-Type", "application/yaml")
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	require.Equal(t, http.StatusUnsupportedMediaType, rr.Code)
	require.EqualValues(t, 4, count(), "refused requests store nothing")
}

// FuzzParseAudit: any body is either refused as a whole or split into
// items that are each refused with a field path or carry what eventpipe
// keys and orders records by.
func FuzzParseAudit(f *testing.F) {
	f.Add([]byte(auditList(auditItem("a1", "ResponseComplete"))))
	f.Add([]byte(auditItem("a1", "Panic") + "\n" + auditItem("a2", "ResponseStarted")))
	f.Add([]byte(`[{"auditID":"x"}]`))
	f.Add([]byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"kind":"EventList"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := ParseAudit(body, bytes.HasPrefix(body, []byte("\n")), 100)
		if err != nil {
			return
		}
		require.NotEmpty(t, items)
		for i, it := range items {
			require.Equal(t, i, it.Index)
			if it.Err != nil {
				require.True(t, strings.HasPrefix(it.Err.Field, fmt.Sprintf("items[%d]", i)), it.Err.Field)
				continue
			}
			ev := it.Event
			require.NotEmpty(t, ev.AuditID)
			require.NotEmpty(t, ev.Verb)
			require.False(t, ev.RequestReceivedTimestamp.IsZero())
			require.Contains(t, []auditv1.Stage{auditv1.StageRequestReceived, auditv1.StageResponseStarted, auditv1.StageResponseComplete, auditv1.StagePanic}, ev.Stage)
			// What is stored encodes and decodes to the same record.
			rec := &audit.Record{Scope: scope.Scope{Type: "Project", Name: "p"}, Event: ev}
			m, err := audit.Encode(rec)
			require.NoError(t, err)
			back, err := audit.Decode(m.Subject, m.Data, 1, ev.StageTimestamp.Time)
			require.NoError(t, err)
			require.Equal(t, ev.AuditID, back.Event.AuditID)
			require.Equal(t, audit.MsgID(rec.Scope, string(ev.AuditID), ev.Stage), audit.MsgID(back.Scope, string(back.Event.AuditID), back.Event.Stage))
		}
	})
}
