package eventquery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eventpipe/eventpipe/internal/scope"
	chstore "github.com/eventpipe/eventpipe/internal/store/clickhouse"
)

func TestCursor(t *testing.T) {
	now := time.Date(2026, 2, 18, 12, 0, 0, 0, time.UTC)
	alpha := scope.Scope{Type: scope.TypeProject, Name: "alpha"}
	beta := scope.Scope{Type: scope.TypeProject, Name: "beta"}
	s, err := NewSigner([]byte("k"), time.Hour)
	require.NoError(t, err)
	b := Binding{Kind: "EventQuery", StartTime: "now-7d", EndTime: "now", FieldSelector: "type=Warning", Scope: &alpha}
	c := Cursor{Window: Window{Start: now.Add(-7 * 24 * time.Hour), End: now}, AtSeq: 42, IssuedAt: now,
		After: chstore.HistoryKey{LastTime: now.Add(-time.Hour + 123), Scope: alpha, Namespace: "prod", Name: "a.1"}}
	tok := s.Encode(b, c)

	got, err := s.Decode(tok, b, now.Add(59*time.Minute))
	require.NoError(t, err)
	require.Equal(t, c, got)

	for name, f := range map[string]func() (string, Binding){
		"other selector": func() (string, Binding) { b2 := b; b2.FieldSelector = "type=Normal"; return tok, b2 },
		"other tenant":   func() (string, Binding) { b2 := b; b2.Scope = &beta; return tok, b2 },
		"platform":       func() (string, Binding) { b2 := b; b2.Scope = nil; return tok, b2 },
		"other kind":     func() (string, Binding) { b2 := b; b2.Kind = "EventFacetQuery"; return tok, b2 },
	} {
		tk, bb := f()
		_, err := s.Decode(tk, bb, now)
		require.ErrorIs(t, err, ErrCursorForeign, name)
	}
	other, _ := NewSigner(nil, time.Hour)
	_, err = other.Decode(tok, b, now)
	require.ErrorIs(t, err, ErrCursorInvalid, "another server's key")
	for i := range tok {
		bad := []byte(tok)
		bad[i] ^= 0x01
		_, err = s.Decode(string(bad), b, now)
		require.Error(t, err, "flipped byte %d", i)
	}
	_, err = s.Decode("garbage", b, now)
	require.ErrorIs(t, err, ErrCursorInvalid)
	_, err = s.Decode(tok, b, now.Add(61*time.Minute))
	require.ErrorIs(t, err, ErrCursorExpired)
}
