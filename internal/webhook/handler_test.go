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
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/eventtest"
)

func serve(t *testing.T, h http.Handler, method string, body []byte) (int, metav1.Status, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, Path, bytes.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var st metav1.Status
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &st), rec.Body.String())
	require.Equal(t, "Status", st.Kind)
	require.EqualValues(t, rec.Code, st.Code)
	return rec.Code, st, rec.Header()
}

// TestHandlerAnswers covers what the end-to-end test cannot provoke
// cheaply: a JetStream that does not acknowledge (503, retry the whole
// request, which then stores nothing twice) and a wrong method.
func TestHandlerAnswers(t *testing.T) {
	ns := eventtest.Stream(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.PublishTimeout = 2 * time.Second
	h := New(eventlog.NewPublisher(ns.JS), platformScopes{}, cfg)

	code, st, hdr := serve(t, h, http.MethodGet, nil)
	require.Equal(t, http.StatusMethodNotAllowed, code)
	require.Equal(t, metav1.StatusReasonMethodNotAllowed, st.Reason)
	require.Equal(t, http.MethodPost, hdr.Get("Allow"))

	body := []byte(coreEvent(1) + "\n" + coreEvent(2))
	code, st, _ = serve(t, h, http.MethodPost, body)
	require.Equal(t, http.StatusAccepted, code, st.Message)

	// The stream refuses writes: the request fails as a whole, retryably.
	s, err := ns.JS.Stream(ctx, eventlog.StreamName)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	cfgStream := info.Config
	cfgStream.Subjects = []string{"elsewhere.>"}
	_, err = ns.JS.UpdateStream(ctx, cfgStream)
	require.NoError(t, err)
	code, st, hdr = serve(t, h, http.MethodPost, []byte(coreEvent(3)))
	require.Equal(t, http.StatusServiceUnavailable, code, st.Message)
	require.Equal(t, metav1.StatusReasonServiceUnavailable, st.Reason)
	require.Equal(t, "1", hdr.Get("Retry-After"))

	// Back to normal: the retried first request stores nothing twice.
	cfgStream.Subjects = []string{eventlog.SubjectPrefix + ".>"}
	_, err = ns.JS.UpdateStream(ctx, cfgStream)
	require.NoError(t, err)
	code, _, _ = serve(t, h, http.MethodPost, body)
	require.Equal(t, http.StatusAccepted, code)
	info, err = s.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, info.State.Msgs)
}

// TestHandlerKeepsEachEventsOrder posts several states of one event mixed
// with other events, with an in-flight bound smaller than the body so that
// each round is sent in several chunks: every state is stored once, and one
// event's states are stored in the order of the body. (Why one event's
// states go in successive rounds, a failure part-way through a round, is
// for PublishAll's contract; a healthy stream cannot show it.)
func TestHandlerKeepsEachEventsOrder(t *testing.T) {
	ns := eventtest.Stream(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.MaxInFlight = 2
	h := New(eventlog.NewPublisher(ns.JS), platformScopes{}, cfg)

	state := func(name string, count int) string {
		typ := "MODIFIED"
		if count == 1 {
			typ = "ADDED"
		}
		return fmt.Sprintf(`{"type":%q,"object":{"metadata":{"name":%q,"namespace":"prod","uid":"u-%s","resourceVersion":"%d"},`+
			`"involvedObject":{"kind":"Pod","namespace":"prod","name":"web"},"reason":"BackOff","message":"m","source":{"component":"kubelet"},`+
			`"firstTimestamp":"2026-11-25T10:00:00Z","lastTimestamp":"2026-11-25T10:05:00Z","count":%d,"type":"Warning"}}`, typ, name, name, count, count)
	}
	var lines []string
	for c := 1; c <= 4; c++ {
		lines = append(lines, state("busy", c))
		for i := range 3 {
			lines = append(lines, state(fmt.Sprintf("other-%d-%d", c, i), 1))
		}
	}
	code, st, _ := serve(t, h, http.MethodPost, []byte(strings.Join(lines, "\n")))
	require.Equal(t, http.StatusAccepted, code, st.Message)

	s, err := ns.JS.Stream(ctx, eventlog.StreamName)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(lines), info.State.Msgs)
	var busy []int32
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		rec, err := eventlog.DecodeMsg(m.Subject, m.Header, m.Data, m.Sequence)
		require.NoError(t, err)
		if rec.Key.Name == "busy" {
			busy = append(busy, rec.Event.Count)
		}
	}
	require.Equal(t, []int32{1, 2, 3, 4}, busy)
}
