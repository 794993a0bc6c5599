package eventquery

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

// Cursor errors; the REST layer maps them to 422 and 410.
var (
	ErrCursorInvalid = errors.New("continue token is malformed or was not issued by this server (or was modified)")
	ErrCursorForeign = errors.New("continue token belongs to a different query or caller; send exactly the spec of the first page plus spec.continue")
	ErrCursorExpired = errors.New("continue token expired")
)

// Signer signs and checks continue tokens with an HMAC-SHA256 key. Every
// replica that serves the same clients must share the key, or a page's
// token fails on another replica.
type Signer struct {
	key []byte
	ttl time.Duration
}

// NewSigner uses key, or a random key when key is empty (one replica only).
func NewSigner(key []byte, ttl time.Duration) (*Signer, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate cursor key: %w", err)
		}
	}
	return &Signer{key: key, ttl: ttl}, nil
}

// TTL is how long a token is valid.
func (s *Signer) TTL() time.Duration { return s.ttl }

// Binding is what a token is bound to: the query's parameters as sent and
// the caller's scope. Pages of a query must repeat them exactly.
type Binding struct {
	Kind, StartTime, EndTime, Namespace, FieldSelector string
	// Params are a kind's other parameters in one canonical string (e.g.
	// AuditLogQuery's filters); empty for the kinds that have none.
	Params string
	Scope  *scope.Scope
}

func (b Binding) digest() string {
	sc := "*" // every scope
	if b.Scope != nil {
		sc = b.Scope.String()
	}
	h := sha256.New()
	parts := []string{b.Kind, b.StartTime, b.EndTime, b.Namespace, b.FieldSelector, sc}
	if b.Params != "" {
		// Only when set: the digests of kinds without Params (and so
		// their tokens in flight) stay as they were.
		parts = append(parts, b.Params)
	}
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// Cursor is the state a page hands to the next.
type Cursor struct {
	// Window is the first page's resolved window, reused by every page.
	Window Window
	// AtSeq is the first page's watermark: every page reads the same
	// snapshot, so events arriving between pages neither shift nor repeat
	// items.
	AtSeq uint64
	// After is the last item returned.
	After chstore.HistoryKey
	// IssuedAt is when the first page was answered (tokens expire from it).
	IssuedAt time.Time
}

type cursorJSON struct {
	V     int    `json:"v"`
	Bind  string `json:"b"`
	Start int64  `json:"s"`
	End   int64  `json:"e"`
	At    uint64 `json:"w"`
	Iat   int64  `json:"i"`
	Last  int64  `json:"t"`
	ST    string `json:"st"`
	SN    string `json:"sn"`
	NS    string `json:"ns"`
	N     string `json:"n"`
}

// Encode signs c for b.
func (s *Signer) Encode(b Binding, c Cursor) string {
	payload, _ := json.Marshal(cursorJSON{V: 1, Bind: b.digest(), Start: c.Window.Start.UnixNano(), End: c.Window.End.UnixNano(),
		At: c.AtSeq, Iat: c.IssuedAt.Unix(), Last: c.After.LastTime.UnixNano(),
		ST: c.After.Scope.Type, SN: c.After.Scope.Name, NS: c.After.Namespace, N: c.After.Name})
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + s.mac(p)
}

func (s *Signer) mac(p string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(p))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Decode checks tok's signature, age (at now) and binding to b.
func (s *Signer) Decode(tok string, b Binding, now time.Time) (Cursor, error) {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.mac(p))) {
		return Cursor{}, ErrCursorInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Cursor{}, ErrCursorInvalid
	}
	var j cursorJSON
	if err := json.Unmarshal(raw, &j); err != nil || j.V != 1 {
		return Cursor{}, ErrCursorInvalid
	}
	c := Cursor{
		Window:   Window{Start: time.Unix(0, j.Start).UTC(), End: time.Unix(0, j.End).UTC()},
		AtSeq:    j.At,
		IssuedAt: time.Unix(j.Iat, 0).UTC(),
		After: chstore.HistoryKey{LastTime: time.Unix(0, j.Last).UTC(), Scope: scope.Scope{Type: j.ST, Name: j.SN},
			Namespace: j.NS, Name: j.N},
	}
	if now.Sub(c.IssuedAt) > s.ttl {
		return Cursor{}, fmt.Errorf("%w: it was issued at %s and is valid for %s", ErrCursorExpired, c.IssuedAt.Format(time.RFC3339), s.ttl)
	}
	if j.Bind != b.digest() {
		return Cursor{}, ErrCursorForeign
	}
	return c, nil
}
