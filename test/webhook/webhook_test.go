// Package webhook checks the API server's webhook receiver (POST
// /ingest/v1/events) end to end: through the real server's authentication,
// into JetStream, and through the writer into ClickHouse (issue 7).
package webhook

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventpipe/eventpipe/internal/devenv/devtest"
	"github.com/eventpipe/eventpipe/internal/etcdfront"
	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
	"github.com/eventpipe/eventpipe/internal/webhook"
)

type client struct {
	t    *testing.T
	url  string
	http *http.Client
}

// post sends body with the given headers and decodes the Status answer.
func (c *client) post(body []byte, headers ...string) (int, *metav1.Status) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url+webhook.Path, bytes.NewReader(body))
	require.NoError(c.t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var st metav1.Status
	raw, _ := io.ReadAll(resp.Body)
	require.NoError(c.t, json.Unmarshal(raw, &st), "answer %d: %s", resp.StatusCode, raw)
	require.Equal(c.t, "Status", st.Kind, "%s", raw)
	require.EqualValues(c.t, resp.StatusCode, st.Code, "%s", raw)
	return resp.StatusCode, &st
}

func coreEvent(name string, count int32, extra string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Event","metadata":{"name":%q,"namespace":"hooks","uid":"uid-%s","resourceVersion":"%d"%s},`+
		`"involvedObject":{"kind":"Pod","namespace":"hooks","name":"web-1","uid":"pod-uid"},"reason":"BackOff","message":"Back-off restarting failed container",`+
		`"source":{"component":"kubelet","host":"node-1"},"firstTimestamp":"2026-11-25T10:00:00Z","lastTimestamp":"2026-11-25T10:05:00Z","count":%d,"type":"Warning"}`,
		name, name, 100+count, extra, count)
}

func eventsEvent(name string) string {
	return fmt.Sprintf(`{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":%q,"namespace":"hooks"},"eventTime":"2026-11-25T10:00:00.123456Z",`+
		`"regarding":{"kind":"Deployment","namespace":"hooks","name":"web"},"note":"Scaled up","reason":"ScalingReplicaSet","action":"Scale",`+
		`"reportingController":"deployment-controller","reportingInstance":"kcm-1","type":"Normal"}`, name)
}

func TestWebhook(t *testing.T) {
	env := devtest.New(t).Env
	rc, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	require.NoError(t, err)
	hc, err := rest.HTTPClientFor(rc)
	require.NoError(t, err)
	admin := &client{t: t, url: env.APIServerURL, http: hc}
	anonCfg := rest.AnonymousClientConfig(rc)
	anonHC, err := rest.HTTPClientFor(anonCfg)
	require.NoError(t, err)
	anonymous := &client{t: t, url: env.APIServerURL, http: anonHC}
	badCfg := rest.AnonymousClientConfig(rc)
	badCfg.BearerToken = "not-a-token"
	badHC, err := rest.HTTPClientFor(badCfg)
	require.NoError(t, err)
	wrongToken := &client{t: t, url: env.APIServerURL, http: badHC}
	cs, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)

	t.Run("batch with valid and invalid items stores exactly the valid ones", func(t *testing.T) {
		list := `{"apiVersion":"v1","kind":"EventList","items":[` + strings.Join([]string{
			coreEvent("good-1", 1, ""),
			coreEvent("good-2", 5, ""),
			`{"metadata":{"name":"bad-ns","namespace":"hooks"},"involvedObject":{"kind":"Pod","namespace":"other","name":"p"},"reason":"R"}`,
			`{"metadata":{"name":"bad/name","namespace":"hooks"},"involvedObject":{"kind":"Pod","namespace":"hooks","name":"p"},"reason":"R"}`,
			`{"apiVersion":"v1","kind":"Event","metadata":{"name":"no-namespace"},"involvedObject":{"kind":"Node","name":"n"},"reason":"R"}`,
			`{"kind":"Pod","apiVersion":"v1"}`,
		}, ",") + `]}`
		code, st := admin.post([]byte(list), "Content-Type", "application/json")
		require.Equal(t, http.StatusAccepted, code, st.Message)
		require.Equal(t, "stored 2 of 6 events; 4 refused", st.Message)
		require.NotNil(t, st.Details)
		var fields []string
		for _, c := range st.Details.Causes {
			fields = append(fields, c.Field)
		}
		require.Equal(t, []string{"items[2].involvedObject.namespace", "items[3].metadata.name", "items[4].metadata.namespace", "items[5].kind"}, fields)
		require.Contains(t, st.Details.Causes[1].Message, "may not contain '/'")
		require.Contains(t, st.Details.Causes[3].Message, `supported values: "Event", "EventList"`)

		// NDJSON, gzip, events.k8s.io/v1 with one broken line and one
		// events.k8s.io/v1 item that breaks its stricter rules.
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		fmt.Fprintln(zw, eventsEvent("good-3"))
		fmt.Fprintln(zw, `{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"bad-strict","namespace":"hooks"},"regarding":{"kind":"Pod","namespace":"hooks","name":"p"},"reason":"R","type":"Normal"}`)
		fmt.Fprintln(zw, `{"broken json`)
		fmt.Fprintln(zw, `{"type":"ADDED","object":`+coreEvent("good-4", 1, "")+`}`)
		require.NoError(t, zw.Close())
		code, st = admin.post(gz.Bytes(), "Content-Type", "application/x-ndjson", "Content-Encoding", "gzip")
		require.Equal(t, http.StatusAccepted, code, st.Message)
		require.Equal(t, "stored 2 of 4 events; 2 refused", st.Message)
		require.Equal(t, "items[1].eventTime", st.Details.Causes[0].Field, st.Details.Causes[0].Message)
		require.Equal(t, "items[2]", st.Details.Causes[1].Field)

		// The sinks people run: one bare event per POST (no apiVersion),
		// and a retry of a whole batch stores nothing twice.
		code, st = admin.post([]byte(strings.Replace(coreEvent("good-5", 2, ""), `"apiVersion":"v1","kind":"Event",`, "", 1)))
		require.Equal(t, http.StatusAccepted, code, st.Message)
		code, _ = admin.post([]byte(list), "Content-Type", "application/json")
		require.Equal(t, http.StatusAccepted, code)

		recs := eventtest.States(t, env.JS, eventlog.FilterSubject(nil, nil))
		var names []string
		for _, r := range recs {
			if r.Key.Namespace == metav1.NamespaceSystem && r.Key.Name == etcdfront.GenesisName {
				continue // dev mode's etcd front wrote it into the fresh log, before the test began
			}
			names = append(names, r.Key.Name)
			require.Equal(t, scope.Platform, r.Key.Scope, "a platform caller's events without scope annotations go to the Platform scope")
			require.Equal(t, fmt.Sprint(r.Seq), r.Event.ResourceVersion, "the source's resourceVersion is replaced by the stream sequence")
		}
		require.ElementsMatch(t, []string{"good-1", "good-2", "good-3", "good-4", "good-5"}, names, "exactly the valid items, once each")

		// Through the writer into ClickHouse, and back through the API.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		require.NoError(t, env.Writer.WaitFor(ctx, recs[len(recs)-1].Seq))
		ns := "hooks"
		rows, err := env.Store.List(ctx, chstore.ListQuery{LatestFilter: chstore.LatestFilter{Namespace: &ns, AtSeq: env.Writer.Watermark()}})
		require.NoError(t, err)
		require.Len(t, rows, 5)
		ev, err := cs.CoreV1().Events("hooks").Get(ctx, "good-2", metav1.GetOptions{})
		require.NoError(t, err)
		require.EqualValues(t, 5, ev.Count)
		require.Equal(t, "uid-good-2", string(ev.UID), "the source uid is kept")
		require.Equal(t, "Back-off restarting failed container", ev.Message)
		ev, err = cs.CoreV1().Events("hooks").Get(ctx, "good-3", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, "Scaled up", ev.Message, "events.k8s.io/v1 note is the core message")
		require.Equal(t, "deployment-controller", ev.ReportingController)

		// A delete through a watch-event envelope.
		code, _ = admin.post([]byte(`{"type":"DELETED","object":` + coreEvent("good-1", 1, "") + `}`))
		require.Equal(t, http.StatusAccepted, code)
		_, err = cs.CoreV1().Events("hooks").Get(ctx, "good-1", metav1.GetOptions{})
		require.True(t, isNotFound(err), "deleted: %v", err)
	})

	t.Run("refusals are Status objects with the right codes", func(t *testing.T) {
		before := len(eventtest.States(t, env.JS, eventlog.FilterSubject(nil, nil)))
		cases := []struct {
			name    string
			c       *client
			body    []byte
			headers []string
			code    int
			reason  metav1.StatusReason
			msg     string
		}{
			{"no credentials", anonymous, []byte(coreEvent("x", 1, "")), nil, 401, metav1.StatusReasonUnauthorized, "needs credentials"},
			{"wrong token", wrongToken, []byte(coreEvent("x", 1, "")), nil, 401, metav1.StatusReasonUnauthorized, ""},
			{"malformed JSON", admin, []byte(`{"metadata":`), nil, 400, metav1.StatusReasonBadRequest, "not valid JSON"},
			{"empty", admin, nil, nil, 400, metav1.StatusReasonBadRequest, "empty"},
			{"bad gzip", admin, []byte("not gzip"), []string{"Content-Encoding", "gzip"}, 400, metav1.StatusReasonBadRequest, "not valid gzip"},
			{"oversize body", admin, bytes.Repeat([]byte(" "), int(webhook.DefaultConfig().MaxBodyBytes)+1), nil, 413, metav1.StatusReasonRequestEntityTooLarge, "larger than"},
			{"gzip bomb", admin, gzipped(bytes.Repeat([]byte(" "), int(webhook.DefaultConfig().MaxBodyBytes)+1)), []string{"Content-Encoding", "gzip"}, 413, metav1.StatusReasonRequestEntityTooLarge, "after decompression"},
			{"oversize item", admin, []byte(coreEvent("big", 1, `,"annotations":{"a":"`+strings.Repeat("x", 200<<10)+`"}`)), nil, 413, metav1.StatusReasonRequestEntityTooLarge, "at most 131072 allowed"},
			{"all invalid", admin, []byte(`[{"metadata":{"name":"a"}}]`), nil, 422, metav1.StatusReasonInvalid, "items[0].metadata.namespace"},
			{"unsupported media type", admin, []byte("<xml/>"), []string{"Content-Type", "application/xml"}, 415, metav1.StatusReasonUnsupportedMediaType, "allowed: application/json"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				code, st := c.c.post(c.body, c.headers...)
				require.Equal(t, c.code, code, st.Message)
				require.Equal(t, c.reason, st.Reason)
				require.Equal(t, metav1.StatusFailure, st.Status)
				require.Contains(t, st.Message, c.msg)
			})
		}
		require.Len(t, eventtest.States(t, env.JS, eventlog.FilterSubject(nil, nil)), before, "nothing refused was stored")
	})
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func isNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), "not found")
}

var _ = corev1.EventTypeNormal
