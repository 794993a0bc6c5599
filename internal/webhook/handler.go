package webhook

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/semaphore"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/storage/names"

	"github.com/eventpipe/eventpipe/internal/eventlog"
	"github.com/eventpipe/eventpipe/internal/kubeevents/validation"
	"github.com/eventpipe/eventpipe/internal/scope"
)

// Path is where the receiver is served.
const Path = "/ingest/v1/events"

// Log is what the receiver needs from the EVENTS stream;
// eventlog.Publisher has it. PublishAll stores records of distinct events
// with one wait for all their acknowledgements, setting each one's Seq; it
// is called concurrently.
type Log interface {
	PublishAll(ctx context.Context, recs []*eventlog.Record, msgIDs []string) error
}

// Scopes decides which scope a caller's event is written into (the
// caller's user is in ctx); the Events API's event.Scopes has it, so that
// the webhook stamps exactly as the API does.
type Scopes interface {
	WriteScope(ctx context.Context, ev *corev1.Event) (scope.Scope, error)
}

// Admission may refuse a request's writes into one scope as a whole (the
// tiers' rate limits and storage quota). When it admits, done must be
// called once the publishes are over, with the highest sequence stored, or
// with their error.
type Admission interface {
	AdmitBatch(ctx context.Context, sc scope.Scope, recs []*eventlog.Record) (done func(maxSeq uint64, err error), err error)
}

// Config bounds the receiver.
type Config struct {
	// Admission, when set, may refuse a request before anything is stored.
	Admission Admission
	// MaxBodyBytes bounds a request body, after gzip decompression too.
	MaxBodyBytes int64
	Limits
	// MaxInFlight bounds the publishes of all requests together.
	MaxInFlight int
	// PublishTimeout bounds the publishes of one request; a request whose
	// publishes do not finish in time gets 503 and may be retried (the message ids make the
	// retry store nothing twice).
	PublishTimeout time.Duration
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:   32 << 20,
		Limits:         Limits{MaxItemBytes: 128 << 10, MaxItems: 20000},
		MaxInFlight:    2048,
		PublishTimeout: 10 * time.Second,
	}
}

// Handler is the receiver: POST an Event, an EventList, a JSON array or
// NDJSON of them, optionally gzip-compressed. It answers 202 once every
// accepted event is stored in JetStream, with the refused ones listed as
// causes of a Status. It is safe for concurrent use.
type Handler struct {
	log    Log
	scopes Scopes
	cfg    Config
	sem    *semaphore.Weighted
}

// New returns a receiver that publishes to log and stamps with scopes.
func New(log Log, scopes Scopes, cfg Config) *Handler {
	return &Handler{log: log, scopes: scopes, cfg: cfg, sem: semaphore.NewWeighted(int64(cfg.MaxInFlight))}
}

var statusGK = schema.GroupKind{Kind: "Event"}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, &apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "events"}, r.Method).ErrStatus)
		return
	}
	ndjson, err := mediaType(r.Header.Get("Content-Type"))
	if err != nil {
		writeStatus(w, statusOf(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType, err.Error()))
		return
	}
	body, st := h.readBody(w, r)
	if st != nil {
		writeStatus(w, st)
		return
	}
	items, err := Parse(body, ndjson, h.cfg.Limits)
	var tooMany ErrTooManyItems
	switch {
	case errors.As(err, &tooMany):
		writeStatus(w, statusOf(http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge, err.Error()))
		return
	case err != nil:
		writeStatus(w, statusOf(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
		return
	}
	recs := make([]*pending, 0, len(items))
	var refused field.ErrorList
	for i := range items {
		p, ferr := h.prepare(r.Context(), &items[i])
		if ferr != nil {
			refused = append(refused, ferr)
			continue
		}
		recs = append(recs, p)
	}
	if len(recs) == 0 {
		writeStatus(w, allRefused(refused))
		return
	}
	done, err := h.admit(r.Context(), recs)
	if err != nil {
		var se apierrors.APIStatus
		if errors.As(err, &se) {
			st := se.Status()
			if st.Details != nil && st.Details.RetryAfterSeconds > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(st.Details.RetryAfterSeconds)))
			}
			writeStatus(w, &st)
			return
		}
		writeStatus(w, statusOf(http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error()))
		return
	}
	maxSeq, err := h.publishAll(r.Context(), recs)
	done(maxSeq, err)
	if err != nil {
		st = statusOf(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			fmt.Sprintf("event storage is unavailable, retry the whole request shortly (nothing is stored twice): %v", err))
		st.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
		w.Header().Set("Retry-After", "1")
		writeStatus(w, st)
		return
	}
	ok := &metav1.Status{
		Status:  metav1.StatusSuccess,
		Code:    http.StatusAccepted,
		Message: fmt.Sprintf("stored %d of %d events; %d refused", len(recs), len(items), len(refused)),
	}
	if len(refused) > 0 {
		ok.Details = &metav1.StatusDetails{Kind: statusGK.Kind, Causes: causes(refused)}
	}
	writeStatus(w, ok)
}

// mediaType accepts JSON (also when unlabelled, as many sinks send it) and
// NDJSON.
func mediaType(ct string) (ndjson bool, err error) {
	if ct == "" {
		return false, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, fmt.Errorf("Content-Type %q cannot be parsed; allowed: application/json, application/x-ndjson", ct)
	}
	switch mt {
	case "application/json", "text/json", "text/plain":
		return false, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return true, nil
	}
	return false, fmt.Errorf("Content-Type %q is not supported; allowed: application/json (an Event, an EventList or an array), application/x-ndjson (one per line)", mt)
}

// readBody reads the body, decompressing gzip, within MaxBodyBytes both
// before and after decompression (a small gzip body can expand enormously).
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *metav1.Status) {
	return readBody(w, r, h.cfg.MaxBodyBytes)
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *metav1.Status) {
	tooLarge := func() *metav1.Status {
		return statusOf(http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge,
			fmt.Sprintf("the request body is larger than %d bytes (after decompression); split it into several requests", limit))
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	var src io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, bodyError(err, tooLarge, "the body is not valid gzip")
		}
		defer zr.Close()
		src = zr
	default:
		return nil, statusOf(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
			fmt.Sprintf("Content-Encoding %q is not supported; allowed: gzip, identity", enc))
	}
	body, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		return nil, bodyError(err, tooLarge, "the body cannot be read")
	}
	if int64(len(body)) > limit {
		return nil, tooLarge()
	}
	return body, nil
}

func bodyError(err error, tooLarge func() *metav1.Status, what string) *metav1.Status {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge()
	}
	return statusOf(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("%s: %v", what, err))
}

// pending is an accepted item on its way to JetStream.
type pending struct {
	rec   *eventlog.Record
	msgID string
}

// prepare does for one item what the Events API does for a create:
// system fields, validation with the rules of the item's API version, the
// caller's scope. The item's own uid is kept when it has one (it came from
// a cluster; keeping it lets readers correlate), and its resourceVersion
// and managedFields are dropped: in eventpipe a resourceVersion is a stream
// sequence, and the source's field ownership means nothing here.
func (h *Handler) prepare(ctx context.Context, it *Item) (*pending, *field.Error) {
	if it.Err != nil {
		return nil, it.Err
	}
	ev := it.Event
	path := field.NewPath("items").Index(it.Index)
	sourceRV := ev.ResourceVersion
	ev.ResourceVersion = ""
	ev.ManagedFields = nil
	if ev.UID == "" {
		ev.UID = uuid.NewUUID()
	}
	if ev.CreationTimestamp.IsZero() {
		ev.CreationTimestamp = metav1.Now()
	}
	if ev.Name == "" && ev.GenerateName != "" {
		ev.Name = names.SimpleNameGenerator.GenerateName(ev.GenerateName)
	}
	var errs field.ErrorList
	if it.Op == eventlog.OpDelete {
		// A delete names an event; its content is the last state, which need
		// not pass today's create rules.
		if ev.Name == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "name"), "name or generateName is required"))
		}
		if ev.Namespace == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "namespace"), ""))
		}
	} else {
		errs = validation.ValidateCreateWithGeneric(ev, it.GroupVersion)
	}
	if len(errs) > 0 {
		// One cause per item keeps the answer proportional to the batch;
		// the message carries every problem.
		first := errs[0]
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, &field.Error{Type: first.Type, Field: path.String() + "." + first.Field, BadValue: first.BadValue,
			Detail: strings.Join(msgs, "; ")}
	}
	sc, err := h.scopes.WriteScope(ctx, ev)
	if err != nil {
		var se apierrors.APIStatus
		detail := err.Error()
		if errors.As(err, &se) {
			detail = se.Status().Message
		}
		return nil, field.Forbidden(path.Child("metadata", "annotations"), "scope: "+detail)
	}
	return &pending{
		rec:   &eventlog.Record{Key: eventlog.Key{Scope: sc, Namespace: ev.Namespace, Name: ev.Name}, Op: it.Op, Event: ev},
		msgID: msgID(sc, string(ev.UID), sourceRV, it.Op, it.Raw),
	}, nil
}

// msgID makes a retried request store nothing twice: an item that carries
// its source uid and resourceVersion (what sinks forward from a cluster) is
// identified by them, any other by a hash of its JSON. The scope is part of
// the id so that two tenants posting the same bytes are not merged.
func msgID(sc scope.Scope, uid, sourceRV string, op eventlog.Op, raw []byte) string {
	prefix := "ingest/" + sc.Type + "/" + sc.Name + "/"
	var id string
	if uid != "" && sourceRV != "" {
		id = prefix + uid + "/" + sourceRV
	} else {
		sum := sha256.Sum256(raw)
		id = prefix + hex.EncodeToString(sum[:16])
	}
	if op == eventlog.OpDelete {
		id += "/delete"
	}
	return id
}

// admit asks the Admission, scope by scope, whether the request's records
// may be stored; all or nothing, so a refused request stores nothing. The
// returned done settles every admitted scope.
func (h *Handler) admit(ctx context.Context, recs []*pending) (func(uint64, error), error) {
	if h.cfg.Admission == nil {
		return func(uint64, error) {}, nil
	}
	byScope := map[scope.Scope][]*eventlog.Record{}
	var order []scope.Scope
	for _, p := range recs {
		sc := p.rec.Key.Scope
		if _, ok := byScope[sc]; !ok {
			order = append(order, sc)
		}
		byScope[sc] = append(byScope[sc], p.rec)
	}
	var dones []func(uint64, error)
	settle := func(seq uint64, err error) {
		for _, d := range dones {
			d(seq, err)
		}
	}
	for _, sc := range order {
		d, err := h.cfg.Admission.AdmitBatch(ctx, sc, byScope[sc])
		if err != nil {
			settle(0, err) // release what earlier scopes reserved
			return nil, err
		}
		dones = append(dones, d)
	}
	return settle, nil
}

// publishAll stores every record and returns once all are acknowledged
// (with the highest sequence stored) or one failed. It publishes in rounds:
// round k holds the k-th state of every event in the body, so the states of
// one event are stored in their order in the body, and a round's records,
// all of distinct events, go out together with one wait for their
// acknowledgements. A round is sent in chunks of at most MaxInFlight
// records, each taking that many places of the in-flight bound shared by
// all requests.
func (h *Handler) publishAll(ctx context.Context, recs []*pending) (uint64, error) {
	var rounds [][]*pending
	nth := make(map[string]int, len(recs)) // states of each event seen so far
	for _, p := range recs {
		subj := eventlog.Subject(p.rec.Key)
		k := nth[subj]
		nth[subj] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[k] = append(rounds[k], p)
	}
	// One deadline for the whole request rather than one per item.
	ctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	var maxSeq uint64
	for _, round := range rounds {
		for len(round) > 0 {
			chunk := round[:min(len(round), h.cfg.MaxInFlight)]
			round = round[len(chunk):]
			if err := h.sem.Acquire(ctx, int64(len(chunk))); err != nil {
				return 0, err
			}
			batch := make([]*eventlog.Record, len(chunk))
			ids := make([]string, len(chunk))
			for i, p := range chunk {
				batch[i], ids[i] = p.rec, p.msgID
			}
			err := h.log.PublishAll(ctx, batch, ids)
			h.sem.Release(int64(len(chunk)))
			if err != nil {
				return 0, err
			}
			for _, r := range batch {
				maxSeq = max(maxSeq, r.Seq)
			}
		}
	}
	return maxSeq, nil
}

// allRefused is the answer when no item could be stored: 413 when every
// item was too large, else 422 with the causes.
func allRefused(errs field.ErrorList) *metav1.Status {
	code, reason := http.StatusUnprocessableEntity, metav1.StatusReasonInvalid
	allTooLarge := true
	for _, e := range errs {
		allTooLarge = allTooLarge && e.Type == field.ErrorTypeTooLong
	}
	if allTooLarge {
		code, reason = http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge
	}
	return &metav1.Status{
		Status: metav1.StatusFailure, Code: int32(code), Reason: reason,
		Message: fmt.Sprintf("no event stored: all %d refused: %s", len(errs), errs.ToAggregate().Error()),
		Details: &metav1.StatusDetails{Kind: statusGK.Kind, Causes: causes(errs)},
	}
}

func causes(errs field.ErrorList) []metav1.StatusCause {
	out := make([]metav1.StatusCause, len(errs))
	for i, e := range errs {
		out[i] = metav1.StatusCause{Type: metav1.CauseType(e.Type), Message: e.ErrorBody(), Field: e.Field}
	}
	return out
}

func statusOf(code int, reason metav1.StatusReason, msg string) *metav1.Status {
	return &metav1.Status{Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg}
}

// writeStatus writes st as kube-apiserver writes a Status: JSON, with the
// HTTP code it names.
func writeStatus(w http.ResponseWriter, st *metav1.Status) {
	st.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(st)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(int(st.Code))
	_, _ = w.Write(buf.Bytes())
}
