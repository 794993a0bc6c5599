package tailwatch

import (
	"context"
	"errors"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

func TestFrom(t *testing.T) {
	ctx := context.Background()
	bounds := func(first uint64, err error) func(context.Context) (uint64, uint64, error) {
		return func(context.Context) (uint64, uint64, error) { return first, first + 100, err }
	}
	down := errors.New("down")
	unavailable := func(err error) error { return apierrors.NewServiceUnavailable(err.Error()) }

	from, expired, err := From(ctx, "41", bounds(10, nil), unavailable)
	if err != nil || expired != nil || from != 42 {
		t.Fatalf("From(41) = %d, %v, %v; want 42", from, expired, err)
	}
	// The state right after rv is the first the log holds: still served.
	if from, expired, err = From(ctx, "9", bounds(10, nil), unavailable); err != nil || expired != nil || from != 10 {
		t.Fatalf("From(9) with first 10 = %d, %v, %v; want 10", from, expired, err)
	}

	_, _, err = From(ctx, "abc", bounds(10, nil), unavailable)
	if !apierrors.IsBadRequest(err) || err.Error() != `invalid resource version: resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax` {
		t.Fatalf("From(abc): %v", err)
	}
	if _, _, err = From(ctx, "41", bounds(0, down), unavailable); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("From with the log down: %v", err)
	}

	_, expired, err = From(ctx, "5", bounds(10, nil), unavailable)
	if err != nil || expired == nil {
		t.Fatalf("From(5) with first 10 = %v, %v; want a 410 watch", expired, err)
	}
	ev := <-expired.ResultChan()
	st, ok := ev.Object.(*metav1.Status)
	if ev.Type != watch.Error || !ok || st.Code != http.StatusGone || st.Reason != metav1.StatusReasonExpired || st.Message != "too old resource version: 5 (9)" {
		t.Fatalf("From(5): %s %#v", ev.Type, ev.Object)
	}
}
