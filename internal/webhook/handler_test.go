package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/natsserver/natstest"
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
	ns := natstest.ForTest(t)
	ctx := context.Background()
	require.NoError(t, eventlog.Ensure(ctx, ns.JS, eventlog.DefaultConfig()))
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
