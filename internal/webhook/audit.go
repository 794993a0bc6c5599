package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/sync/semaphore"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	kjson "sigs.k8s.io/json"

	"github.com/eventpipe/eventpipe/internal/audit"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// AuditPath is where the audit receiver is served: the URL of the
// kubeconfig-style file kube-apiserver's --audit-webhook-config-file names.
const AuditPath = "/ingest/v1/audit"

// AuditLog is what the audit receiver needs from the AUDIT stream;
// audit.Publisher has it. PublishAll stores records under their message
// ids with one wait for all acknowledgements; it is called concurrently.
type AuditLog interface {
	PublishAll(ctx context.Context, recs []*audit.Record, ids []string) error
}

// AuditScopes says which scope a caller's audit records belong to (the
// caller's user is in ctx): a tenant's own scope, the platform scope for
// platform callers. tenancy.Scopes has it.
type AuditScopes interface {
	CallerScope(ctx context.Context) (scope.Scope, error)
}

// AuditConfig bounds the audit receiver.
type AuditConfig struct {
	// MaxBodyBytes bounds a request body, after gzip decompression too.
	MaxBodyBytes int64
	// MaxItems bounds the records of one request (kube-apiserver sends at
	// most --audit-webhook-batch-max-size, 400 by default).
	MaxItems int
	// MaxItemBytes bounds one stored record. A larger one is kept without
	// its request and response objects, as kube-apiserver's own truncation
	// does; only if it is still too large is it refused. It must stay under
	// the AUDIT stream's record size bound (--stream.max-msg-size).
	MaxItemBytes int
	// MaxInFlight bounds the records of all requests being published.
	MaxInFlight int
	// PublishTimeout bounds the publishes of one request; past it the
	// request gets 503 and kube-apiserver retries it (stored once).
	PublishTimeout time.Duration
}

// DefaultAuditConfig returns the documented defaults.
func DefaultAuditConfig() AuditConfig {
	return AuditConfig{MaxBodyBytes: 64 << 20, MaxItems: 10000, MaxItemBytes: 1<<20 - 4096,
		MaxInFlight: 4096, PublishTimeout: 10 * time.Second}
}

// AuditHandler takes kube-apiserver's audit webhook batches (an
// audit.k8s.io/v1 EventList) and also a single Event, a JSON array or
// NDJSON of Events (the audit log file's format), optionally gzipped. It
// answers 202 once every accepted record is stored in JetStream, with the
// refused ones listed as causes; a record resent by kube-apiserver after a
// failure is stored once (its message id is its auditID and stage).
type AuditHandler struct {
	log    AuditLog
	scopes AuditScopes
	cfg    AuditConfig
	sem    *semaphore.Weighted
}

// NewAudit returns an audit receiver that publishes to log.
func NewAudit(log AuditLog, scopes AuditScopes, cfg AuditConfig) *AuditHandler {
	return &AuditHandler{log: log, scopes: scopes, cfg: cfg, sem: semaphore.NewWeighted(int64(cfg.MaxInFlight))}
}

const auditShapes = "an audit.k8s.io/v1 EventList (what kube-apiserver's audit webhook sends), an audit Event, a JSON array of Events, or NDJSON with one Event per line (the audit log file)"

var auditStages = []string{string(auditv1.StageRequestReceived), string(auditv1.StageResponseStarted),
	string(auditv1.StageResponseComplete), string(auditv1.StagePanic)}

var auditLevels = []string{string(auditv1.LevelMetadata), string(auditv1.LevelRequest), string(auditv1.LevelRequestResponse)}

// TruncatedAnnotation marks a record stored without its request and
// response objects because it was too large; the value says how large.
const TruncatedAnnotation = "audit.eventpipe.miloapis.com/truncated"

func (h *AuditHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, &apierrors.NewMethodNotSupported(schema.GroupResource{Group: "audit.k8s.io", Resource: "events"}, r.Method).ErrStatus)
		return
	}
	ndjson, err := mediaType(r.Header.Get("Content-Type"))
	if err != nil {
		writeStatus(w, statusOf(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType, err.Error()))
		return
	}
	body, st := readBody(w, r, h.cfg.MaxBodyBytes)
	if st != nil {
		writeStatus(w, st)
		return
	}
	sc, err := h.scopes.CallerScope(r.Context())
	if err != nil {
		var se apierrors.APIStatus
		if errors.As(err, &se) {
			st := se.Status()
			writeStatus(w, &st)
			return
		}
		writeStatus(w, statusOf(http.StatusForbidden, metav1.StatusReasonForbidden, err.Error()))
		return
	}
	items, err := ParseAudit(body, ndjson, h.cfg.MaxItems)
	var tooMany ErrTooManyItems
	switch {
	case errors.As(err, &tooMany):
		writeStatus(w, statusOf(http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge, err.Error()))
		return
	case err != nil:
		writeStatus(w, statusOf(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
		return
	}
	var recs []*audit.Record
	var ids []string
	var refused field.ErrorList
	for _, it := range items {
		if it.Err == nil {
			it.Err = h.fit(it)
		}
		if it.Err != nil {
			refused = append(refused, it.Err)
			continue
		}
		recs = append(recs, &audit.Record{Scope: sc, Event: it.Event})
		ids = append(ids, audit.MsgID(sc, string(it.Event.AuditID), it.Event.Stage))
	}
	if len(recs) == 0 {
		writeStatus(w, allRefused(refused))
		return
	}
	if err := h.publish(r.Context(), recs, ids); err != nil {
		st := statusOf(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			fmt.Sprintf("audit storage is unavailable, retry the whole request shortly (nothing is stored twice): %v", err))
		st.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
		w.Header().Set("Retry-After", "1")
		writeStatus(w, st)
		return
	}
	ok := &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusAccepted,
		Message: fmt.Sprintf("stored %d of %d audit events; %d refused", len(recs), len(items), len(refused))}
	if len(refused) > 0 {
		ok.Details = &metav1.StatusDetails{Group: "audit.k8s.io", Kind: "Event", Causes: causes(refused)}
	}
	writeStatus(w, ok)
}

// fit keeps a record within MaxItemBytes: too large, it loses its request
// and response objects (the metadata, who did what to which object with
// which outcome, is what the timeline needs); still too large, it is
// refused.
func (h *AuditHandler) fit(it AuditItem) *field.Error {
	n := len(it.Raw)
	if n <= h.cfg.MaxItemBytes {
		return nil
	}
	ev := it.Event
	if b, err := json.Marshal(ev); err == nil && len(b) <= h.cfg.MaxItemBytes {
		return nil // the body had room to spare (indentation)
	}
	ev.RequestObject, ev.ResponseObject = nil, nil
	if ev.Annotations == nil {
		ev.Annotations = map[string]string{}
	}
	ev.Annotations[TruncatedAnnotation] = fmt.Sprintf("requestObject and responseObject dropped: the record was %d bytes, at most %d are kept", n, h.cfg.MaxItemBytes)
	if b, err := json.Marshal(ev); err == nil && len(b) <= h.cfg.MaxItemBytes {
		return nil
	}
	e := field.TooLong(field.NewPath("items").Index(it.Index), "", h.cfg.MaxItemBytes)
	e.Detail = fmt.Sprintf("the audit event is %d bytes of JSON and still more than %d without its request and response objects", n, h.cfg.MaxItemBytes)
	return e
}

// publish stores the records within the in-flight bound and the request's
// deadline, in chunks of at most MaxInFlight.
func (h *AuditHandler) publish(ctx context.Context, recs []*audit.Record, ids []string) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	for len(recs) > 0 {
		n := min(len(recs), h.cfg.MaxInFlight)
		if err := h.sem.Acquire(ctx, int64(n)); err != nil {
			return err
		}
		err := h.log.PublishAll(ctx, recs[:n], ids[:n])
		h.sem.Release(int64(n))
		if err != nil {
			return err
		}
		recs, ids = recs[n:], ids[n:]
	}
	return nil
}

// AuditItem is one audit record of a request body, decoded or refused.
type AuditItem struct {
	// Index counts the records of the body from 0.
	Index int
	Event *auditv1.Event
	Raw   []byte
	// Err says why the item is refused; its path starts at items[Index].
	Err *field.Error
}

type auditProbe struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

// ParseAudit reads an audit request body. Items that cannot be used come
// back with Err set, so one bad record never sinks the others; the error is
// for a body whose structure cannot be read, or with more than maxItems.
func ParseAudit(body []byte, ndjson bool, maxItems int) ([]AuditItem, error) {
	var values [][]byte
	body = bytes.TrimSpace(body)
	if !ndjson && looksLikeNDJSON(body) {
		ndjson = true
	}
	switch {
	case ndjson:
		for line := range bytes.SplitSeq(body, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				values = append(values, line)
			}
		}
	case len(body) == 0:
		return nil, fmt.Errorf("the body is empty; send %s", auditShapes)
	case !json.Valid(body):
		var v any
		err := json.Unmarshal(body, &v)
		return nil, fmt.Errorf("the body is not valid JSON (%v); send %s", err, auditShapes)
	case body[0] == '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(body, &elems); err != nil {
			return nil, fmt.Errorf("the body is not a JSON array of audit events (%v); send %s", err, auditShapes)
		}
		for _, e := range elems {
			values = append(values, e)
		}
	default:
		values = [][]byte{body}
	}
	var items []AuditItem
	add := func(raw []byte, fromList bool) error {
		if len(items) >= maxItems {
			return ErrTooManyItems{Max: maxItems}
		}
		items = append(items, decodeAudit(len(items), raw, fromList))
		return nil
	}
	for _, v := range values {
		var pr auditProbe
		if err := json.Unmarshal(v, &pr); err == nil && pr.Kind == "EventList" {
			if pr.APIVersion != auditv1.SchemeGroupVersion.String() {
				if err := add(v, false); err != nil {
					return nil, err
				}
				items[len(items)-1].Err = field.NotSupported(field.NewPath("items").Index(len(items)-1).Child("apiVersion"),
					pr.APIVersion, []string{auditv1.SchemeGroupVersion.String()})
				continue
			}
			for _, it := range pr.Items {
				if err := add(it, true); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := add(v, false); err != nil {
			return nil, err
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("the body holds no audit events; send %s", auditShapes)
	}
	return items, nil
}

// decodeAudit decodes and checks one record: what eventpipe keys, orders
// and indexes it by must be there.
func decodeAudit(idx int, raw []byte, fromList bool) AuditItem {
	it := AuditItem{Index: idx, Raw: raw}
	path := field.NewPath("items").Index(idx)
	ev := &auditv1.Event{}
	// Case-sensitive, as kube-apiserver decodes.
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, ev); err != nil {
		it.Err = field.Invalid(path, "", fmt.Sprintf("cannot decode as an audit.k8s.io/v1 Event: %v", err))
		return it
	}
	var errs field.ErrorList
	if ev.Kind != "" && ev.Kind != "Event" {
		errs = append(errs, field.NotSupported(path.Child("kind"), ev.Kind, []string{"Event", "EventList"}))
	}
	if ev.APIVersion != "" && ev.APIVersion != auditv1.SchemeGroupVersion.String() || ev.APIVersion == "" && !fromList && ev.Kind != "" {
		errs = append(errs, field.NotSupported(path.Child("apiVersion"), ev.APIVersion, []string{auditv1.SchemeGroupVersion.String()}))
	}
	switch id := string(ev.AuditID); {
	case id == "":
		errs = append(errs, field.Required(path.Child("auditID"), "the request's unique id, which makes a resent record store nothing twice"))
	case len(id) > 128:
		errs = append(errs, field.TooLong(path.Child("auditID"), "", 128))
	case !printable(id):
		errs = append(errs, field.Invalid(path.Child("auditID"), id, "must be printable ASCII without spaces"))
	}
	if !contains(auditStages, string(ev.Stage)) {
		errs = append(errs, field.NotSupported(path.Child("stage"), string(ev.Stage), auditStages))
	}
	if !contains(auditLevels, string(ev.Level)) {
		errs = append(errs, field.NotSupported(path.Child("level"), string(ev.Level), auditLevels))
	}
	if ev.Verb == "" {
		errs = append(errs, field.Required(path.Child("verb"), "the request's verb, e.g. create, patch, delete"))
	}
	if ev.RequestReceivedTimestamp.IsZero() {
		errs = append(errs, field.Required(path.Child("requestReceivedTimestamp"), "when the request arrived, RFC 3339 with microseconds"))
	}
	if len(errs) > 0 {
		first := errs[0]
		if len(errs) > 1 {
			first.Detail = errs.ToAggregate().Error()
		}
		it.Err = first
		return it
	}
	if ev.StageTimestamp.IsZero() {
		ev.StageTimestamp = ev.RequestReceivedTimestamp
	}
	ev.TypeMeta = metav1.TypeMeta{APIVersion: auditv1.SchemeGroupVersion.String(), Kind: "Event"}
	it.Event = ev
	return it
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
